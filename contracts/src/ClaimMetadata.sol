// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.30;

import {Base64} from "@openzeppelin/contracts/utils/Base64.sol";
import {Strings} from "@openzeppelin/contracts/utils/Strings.sol";
import {IClaimLedger} from "./interfaces/IClaimLedger.sol";

/// @title ClaimMetadata
/// @notice The ERC-721 / ERC-3525 metadata JSON of the claim ledger, built on chain and served
/// as `data:application/json;base64,...` URIs (the EIP's recommendation: no off-chain server a
/// wallet depends on). Amounts are shown in currency units with the deployment's decimals
/// (`123456` minor units with 2 decimals is `"1234.56"`), dates as ISO dates (UTC) besides
/// the UNIX time. Every string put into the JSON is generated here from numbers and addresses
/// (the currency code is three letters A–Z, checked at construction), so nothing needs escaping.
///
/// A contract the ledger creates in its constructor (so the ledger's own code stays under the
/// 24 KiB limit): the ledger answers `name`, `symbol`, `tokenURI`, `contractURI` and `slotURI`
/// with what this contract answers to the same call, and this contract reads the ledger's
/// views. It holds no state but the ledger's address, currency and decimals.
contract ClaimMetadata {
    using Strings for uint256;
    using Strings for address;

    string internal constant NAME = "Tierflow claim piece";
    string internal constant SYMBOL = "TFCLAIM";

    /// @notice The ledger this contract describes (its creator).
    IClaimLedger public immutable LEDGER;
    bytes3 private immutable _currencyCode;
    uint8 private immutable _decimals;

    constructor(bytes3 currency, uint8 decimals) {
        LEDGER = IClaimLedger(msg.sender);
        _currencyCode = currency;
        _decimals = decimals;
    }

    function name() external pure returns (string memory) {
        return NAME;
    }

    function symbol() external pure returns (string memory) {
        return SYMBOL;
    }

    /// @dev A live piece (else the ledger's ClaimNotFound, from `ownerOf`).
    function tokenURI(uint256 tokenId) external view returns (string memory) {
        if (LEDGER.ownerOf(tokenId) == address(0)) revert IClaimLedger.ClaimNotFound(tokenId); // ownerOf reverts first
        IClaimLedger.ClaimView memory c = LEDGER.claim(tokenId);
        return _tokenURI(c, LEDGER.getPayable(c.payableId).obligor, _currencyCode, _decimals);
    }

    function contractURI() external view returns (string memory) {
        return _contractURI(_currencyCode, _decimals);
    }

    /// @dev A payable (else PayableNotFound, as the ledger says it).
    function slotURI(uint256 payableId) external view returns (string memory) {
        IClaimLedger.Payable memory p = LEDGER.getPayable(payableId);
        if (p.status == IClaimLedger.PayableStatus.None) revert IClaimLedger.PayableNotFound(payableId);
        return _slotURI(payableId, p, _currencyCode, _decimals);
    }

    /// @dev The collection: what a piece is, and the value's unit.
    function _contractURI(bytes3 currency, uint8 decimals) private pure returns (string memory) {
        return _dataURI(
            string.concat(
                '{"name":"',
                NAME,
                's","description":"Claims on payables confirmed on chain by their obligors (ERC-3525: a slot is a payable, a token is a piece of it, its value the amount in minor units of ',
                _currency(currency),
                ').","valueDecimals":',
                uint256(decimals).toString(),
                ',"currency":"',
                _currency(currency),
                '"}'
            )
        );
    }

    /// @dev One payable (slot): obligor, supplier, face value, due date and status.
    function _slotURI(uint256 payableId, IClaimLedger.Payable memory p, bytes3 currency, uint8 decimals)
        private
        pure
        returns (string memory)
    {
        string memory face = _amount(p.faceValue, decimals);
        string memory due = _date(p.dueDate);
        return _dataURI(
            string.concat(
                string.concat(
                    '{"name":"Payable #',
                    payableId.toString(),
                    '","description":"',
                    face,
                    " ",
                    _currency(currency),
                    " owed by ",
                    p.obligor.toHexString(),
                    " to the holders of its pieces, due ",
                    due,
                    '.","valueDecimals":',
                    uint256(decimals).toString()
                ),
                string.concat(
                    ',"properties":{"payable_id":',
                    payableId.toString(),
                    ',"obligor":"',
                    p.obligor.toHexString(),
                    '","supplier":"',
                    p.supplier.toHexString(),
                    '","face_value":"',
                    face,
                    '","settled_value":"',
                    _amount(p.settledValue, decimals)
                ),
                string.concat(
                    '","currency":"',
                    _currency(currency),
                    '","due_date":"',
                    due,
                    '","due_timestamp":',
                    uint256(p.dueDate).toString(),
                    ',"status":"',
                    _payableStatus(p.status),
                    '"}}'
                )
            )
        );
    }

    /// @dev One piece (token): its payable, obligor, due date, amount, holder and status.
    function _tokenURI(IClaimLedger.ClaimView memory c, address obligor, bytes3 currency, uint8 decimals)
        private
        pure
        returns (string memory)
    {
        string memory amount = string.concat(_amount(c.value, decimals), " ", _currency(currency));
        string memory due = _date(c.dueDate);
        return _dataURI(
            string.concat(
                string.concat(
                    '{"name":"Claim piece #',
                    c.id.toString(),
                    '","description":"',
                    amount,
                    " of payable #",
                    c.payableId.toString(),
                    ", owed by ",
                    obligor.toHexString(),
                    ", due ",
                    due,
                    '.","slot":',
                    c.payableId.toString(),
                    ',"balance":',
                    c.value.toString()
                ),
                string.concat(
                    ',"valueDecimals":',
                    uint256(decimals).toString(),
                    ',"properties":{"payable_id":',
                    c.payableId.toString(),
                    ',"obligor":"',
                    obligor.toHexString(),
                    '","holder":"',
                    c.holder.toHexString(),
                    '","amount":"',
                    _amount(c.value, decimals),
                    '","currency":"',
                    _currency(currency)
                ),
                string.concat(
                    '","due_date":"',
                    due,
                    '","due_timestamp":',
                    uint256(c.dueDate).toString(),
                    ',"parent_id":',
                    c.parentId.toString(),
                    ',"depth":',
                    c.depth.toString(),
                    ',"status":"',
                    _claimStatus(c.status),
                    '"},"attributes":[{"trait_type":"Payable","value":"#',
                    c.payableId.toString()
                ),
                string.concat(
                    '"},{"trait_type":"Obligor","value":"',
                    obligor.toHexString(),
                    '"},{"trait_type":"Due date","display_type":"date","value":',
                    uint256(c.dueDate).toString(),
                    '},{"trait_type":"Amount","value":"',
                    amount,
                    '"},{"trait_type":"Status","value":"',
                    _claimStatus(c.status),
                    '"}]}'
                )
            )
        );
    }

    function _dataURI(string memory json) private pure returns (string memory) {
        return string.concat("data:application/json;base64,", Base64.encode(bytes(json)));
    }

    function _currency(bytes3 code) private pure returns (string memory) {
        return string(abi.encodePacked(code));
    }

    /// @dev `value` minor units as a decimal number of currency units ("1234.56", "0.05", "7").
    function _amount(uint256 value, uint8 decimals) private pure returns (string memory) {
        if (decimals == 0) return value.toString();
        uint256 unit = 10 ** decimals;
        bytes memory frac = bytes((value % unit + unit).toString()); // "1" then exactly `decimals` digits
        bytes memory digits = new bytes(decimals);
        for (uint256 i; i < decimals; ++i) {
            digits[i] = frac[i + 1];
        }
        return string.concat((value / unit).toString(), ".", string(digits));
    }

    /// @dev The UTC calendar date of UNIX time `t` as YYYY-MM-DD (H. Hinnant's civil_from_days:
    /// its integer divisions are the calendar's eras, centuries and leap years, by design).
    // slither-disable-start divide-before-multiply
    function _date(uint64 t) private pure returns (string memory) {
        uint256 z = uint256(t) / 1 days + 719_468;
        uint256 era = z / 146_097;
        uint256 doe = z - era * 146_097;
        uint256 yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        uint256 doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        uint256 mp = (5 * doy + 2) / 153;
        uint256 d = doy - (153 * mp + 2) / 5 + 1;
        uint256 m = mp < 10 ? mp + 3 : mp - 9;
        uint256 y = yoe + era * 400 + (m <= 2 ? 1 : 0);
        return string.concat(y.toString(), "-", _two(m), "-", _two(d));
    }
    // slither-disable-end divide-before-multiply

    function _two(uint256 n) private pure returns (string memory) {
        return n < 10 ? string.concat("0", n.toString()) : n.toString();
    }

    function _claimStatus(IClaimLedger.ClaimStatus s) private pure returns (string memory) {
        if (s == IClaimLedger.ClaimStatus.Active) return "active";
        if (s == IClaimLedger.ClaimStatus.Locked) return "locked";
        if (s == IClaimLedger.ClaimStatus.Financed) return "financed";
        if (s == IClaimLedger.ClaimStatus.Settled) return "settled";
        if (s == IClaimLedger.ClaimStatus.Frozen) return "frozen";
        return "cancelled";
    }

    function _payableStatus(IClaimLedger.PayableStatus s) private pure returns (string memory) {
        if (s == IClaimLedger.PayableStatus.Issued) return "issued";
        if (s == IClaimLedger.PayableStatus.Overdue) return "overdue";
        if (s == IClaimLedger.PayableStatus.Settled) return "settled";
        return "cancelled";
    }
}
