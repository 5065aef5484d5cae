// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.30;

import {IInvoiceRegistry} from "./interfaces/IInvoiceRegistry.sol";
import {IMemberRegistry} from "./interfaces/IMemberRegistry.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {ERC2771Context} from "@openzeppelin/contracts/metatx/ERC2771Context.sol";
import {Platform} from "./Platform.sol";
import {Roles} from "./Roles.sol";

/// @title InvoiceRegistry
/// @notice Invoices as hashes: registered by the seller, confirmed by the buyer, used once to
/// back a payable or a claim transfer, or voided. Fingerprints and document hashes are unique
/// forever (I-3): once seen, never registered again, even after voiding. Actors are taken from
/// `_msgSender()` (ERC-2771, the platform's TierflowForwarder).
contract InvoiceRegistry is IInvoiceRegistry, ERC2771Context {
    IMemberRegistry public immutable MEMBERS;
    /// @notice The claim ledger, the only caller of the use and release hooks (I-13).
    address public immutable LEDGER;

    mapping(bytes32 invoiceId => Invoice) private _invoices;
    mapping(bytes32 documentHash => bool) private _documentSeen;

    modifier onlyLedger() {
        if (msg.sender != LEDGER) revert InvoiceCallerNotLedger(msg.sender);
        _;
    }

    constructor(Platform memory platform) ERC2771Context(platform.forwarder) {
        if (
            platform.invoices != address(this) || platform.members == address(0) || platform.ledger == address(0)
                || platform.forwarder == address(0)
        ) revert InvoicePlatformInvalid();
        MEMBERS = IMemberRegistry(platform.members);
        LEDGER = platform.ledger;
    }

    /// @inheritdoc IInvoiceRegistry
    function registerInvoice(
        bytes32 invoiceId,
        address buyer,
        uint128 amount,
        uint64 issueDate,
        bytes32 documentHash
    ) external {
        address seller = _msgSender();
        MEMBERS.requireActive(seller, Roles.SUPPLIER);
        if (invoiceId == bytes32(0) || documentHash == bytes32(0)) revert InvoiceHashInvalid();
        if (amount == 0) revert InvoiceAmountInvalid(amount);
        if (issueDate == 0 || issueDate > block.timestamp) revert InvoiceIssueDateInvalid(issueDate);
        if (buyer == seller || MEMBERS.member(buyer).status == IMemberRegistry.MemberStatus.None) {
            revert InvoiceBuyerInvalid(buyer);
        }
        if (_invoices[invoiceId].status != InvoiceStatus.None) revert InvoiceAlreadyRegistered(invoiceId);
        if (_documentSeen[documentHash]) revert InvoiceDocumentAlreadyRegistered(documentHash);
        _documentSeen[documentHash] = true;
        _invoices[invoiceId] = Invoice({
            seller: seller,
            issueDate: issueDate,
            status: InvoiceStatus.Registered,
            buyer: buyer,
            payableId: 0,
            amount: amount,
            documentHash: documentHash
        });
        emit InvoiceRegistered(invoiceId, seller, buyer, amount, issueDate, documentHash);
    }

    /// @inheritdoc IInvoiceRegistry
    function confirmInvoice(bytes32 invoiceId) external {
        MEMBERS.requireNotPaused();
        Invoice storage inv = _existing(invoiceId);
        address sender = _msgSender();
        if (sender != inv.buyer) revert InvoiceNotBuyer(invoiceId, sender);
        MEMBERS.requireMember(sender);
        if (inv.status != InvoiceStatus.Registered) revert InvoiceStatusInvalid(invoiceId, inv.status);
        inv.status = InvoiceStatus.Confirmed;
        emit InvoiceConfirmed(invoiceId);
    }

    /// @inheritdoc IInvoiceRegistry
    function voidInvoice(bytes32 invoiceId) external {
        MEMBERS.requireNotPaused();
        Invoice storage inv = _existing(invoiceId);
        address sender = _msgSender();
        if (sender != inv.seller && !IAccessControl(address(MEMBERS)).hasRole(Roles.OPERATOR, sender)) {
            revert InvoiceNotSeller(invoiceId, sender);
        }
        InvoiceStatus s = inv.status;
        if (s != InvoiceStatus.Registered && s != InvoiceStatus.Confirmed) revert InvoiceStatusInvalid(invoiceId, s);
        inv.status = InvoiceStatus.Voided;
        emit InvoiceVoided(invoiceId, sender);
    }

    /// @inheritdoc IInvoiceRegistry
    function useForPayable(bytes32[] calldata invoiceIds, address seller, address buyer, uint256 payableId)
        external
        onlyLedger
        returns (uint256 total)
    {
        for (uint256 i; i < invoiceIds.length; ++i) {
            bytes32 id = invoiceIds[i];
            Invoice storage inv = _usable(id, seller, buyer);
            inv.status = InvoiceStatus.Used;
            inv.payableId = uint32(payableId); // the ledger's payable ids are uint32
            total += inv.amount;
            emit InvoiceUsed(id, payableId, 0);
        }
    }

    /// @inheritdoc IInvoiceRegistry
    function useForTransfer(bytes32 invoiceId, address seller, address buyer, uint256 value, uint256 claimId)
        external
        onlyLedger
    {
        Invoice storage inv = _usable(invoiceId, seller, buyer);
        if (inv.amount < value) revert InvoiceAmountInsufficient(invoiceId, inv.amount, value);
        inv.status = InvoiceStatus.Used;
        emit InvoiceUsed(invoiceId, 0, claimId);
    }

    /// @inheritdoc IInvoiceRegistry
    function releaseInvoices(bytes32[] calldata invoiceIds, uint256 payableId) external onlyLedger {
        for (uint256 i; i < invoiceIds.length; ++i) {
            bytes32 id = invoiceIds[i];
            Invoice storage inv = _invoices[id];
            if (inv.status != InvoiceStatus.Used || inv.payableId != payableId || payableId == 0) {
                revert InvoiceNotUsedByPayable(id, payableId);
            }
            inv.status = InvoiceStatus.Confirmed;
            inv.payableId = 0;
            emit InvoiceReleased(id, payableId);
        }
    }

    /// @inheritdoc IInvoiceRegistry
    function invoice(bytes32 invoiceId) external view returns (Invoice memory) {
        return _invoices[invoiceId];
    }

    function _existing(bytes32 invoiceId) private view returns (Invoice storage inv) {
        inv = _invoices[invoiceId];
        if (inv.status == InvoiceStatus.None) revert InvoiceNotFound(invoiceId);
    }

    function _usable(bytes32 invoiceId, address seller, address buyer) private view returns (Invoice storage inv) {
        inv = _existing(invoiceId);
        if (inv.status != InvoiceStatus.Confirmed) revert InvoiceStatusInvalid(invoiceId, inv.status);
        if (inv.seller != seller || inv.buyer != buyer) revert InvoicePartiesMismatch(invoiceId, seller, buyer);
    }
}
