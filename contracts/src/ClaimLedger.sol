// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.30;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {ERC2771Context} from "@openzeppelin/contracts/metatx/ERC2771Context.sol";
import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";
import {IERC721Metadata} from "@openzeppelin/contracts/token/ERC721/extensions/IERC721Metadata.sol";
import {ERC721Utils} from "@openzeppelin/contracts/token/ERC721/utils/ERC721Utils.sol";
import {ERC165, IERC165} from "@openzeppelin/contracts/utils/introspection/ERC165.sol";
import {ClaimMetadata} from "./ClaimMetadata.sol";
import {IClaimLedger} from "./interfaces/IClaimLedger.sol";
import {IERC3525} from "./interfaces/IERC3525.sol";
import {IERC3525Metadata} from "./interfaces/IERC3525Metadata.sol";
import {IERC3525Receiver} from "./interfaces/IERC3525Receiver.sol";
import {IFinancingDesk} from "./interfaces/IFinancingDesk.sol";
import {IInvoiceRegistry} from "./interfaces/IInvoiceRegistry.sol";
import {IMemberRegistry} from "./interfaces/IMemberRegistry.sol";
import {Platform} from "./Platform.sol";
import {Roles} from "./Roles.sol";

/// @title ClaimLedger
/// @notice Payables are ERC-3525 slots, claim pieces are its tokens and a piece's value is its
/// amount in minor units. Storage is packed (a piece is two slots) and nothing is enumerated
/// on chain, so no function's gas grows with the number of pieces, members or invoices (I-9);
/// lists are rebuilt off chain from the events (I-10). Actors are taken from `_msgSender()`
/// (ERC-2771, the platform's TierflowForwarder); the financing hooks accept only the
/// deployment's FinancingDesk, fixed at construction (I-13).
///
/// ERC-721 / ERC-3525 (docs/erc3525.md): approvals work as the EIPs say and are the holder's
/// own consent, but only the standard entry points honour them (the platform's `split` and
/// `transferClaim` stay holder-only), an operator must be an active member, and every platform
/// rule is still checked against the holder; approvals end when the piece changes hands.
contract ClaimLedger is IClaimLedger, IERC3525Metadata, ERC165, ERC2771Context {
    /// @notice Deployment parameters, fixed for the life of the deployment.
    struct Config {
        uint64 termCap; // latest due date, seconds after issue (SPEC: 365 days)
        uint64 longTermThreshold; // above this term the PayableIssued event flags the payable
        uint64 gracePeriod; // seconds after the due date before a payable may be marked Overdue
        bool tradeInvoiceRequired; // every split and transfer must cite a trade-background invoice
        uint8 valueDecimals; // the currency's minor-unit decimals (CNY: 2); ERC-3525 valueDecimals
        bytes3 currency; // ISO 4217 code of the deployment's one currency, three letters A-Z
    }

    uint8 private constant _FROZEN = 1;
    uint8 private constant _FINANCED = 2;
    uint8 private constant _SETTLED = 4;
    uint8 private constant _CANCELLED = 8;
    /// @dev Set on a root piece the first time it is split, transferred or locked: from then on
    /// the payable is no longer "untouched" and cannot be cancelled, even if it comes back whole.
    uint8 private constant _TOUCHED = 16;
    /// @dev Set when an ERC-721 or ERC-3525 approval is given on the piece; the next change of
    /// holder then clears the approved address and starts a new round of value allowances
    /// (so clearing costs nothing on pieces nobody approved, and nothing is enumerated, I-9).
    uint8 private constant _APPROVED = 32;

    /// @dev How a move is authorised: by the holder only (the platform's own entry points), by
    /// the holder or an ERC-721 approval (whole-piece standard transfers), or also by an
    /// ERC-3525 value allowance (value transfers).
    uint8 private constant _BY_HOLDER = 0;
    uint8 private constant _BY_TOKEN_APPROVAL = 1;
    uint8 private constant _BY_VALUE_ALLOWANCE = 2;

    uint256 public constant MAX_INVOICES_PER_PAYABLE = 20;
    uint256 public constant MAX_SETTLEMENT_BATCH = 100;
    uint64 public constant OVERDUE_WINDOW = 180 days;

    IMemberRegistry public immutable MEMBERS;
    IInvoiceRegistry public immutable INVOICES;
    uint64 public immutable TERM_CAP;
    uint64 public immutable LONG_TERM_THRESHOLD;
    uint64 public immutable GRACE_PERIOD;
    bool public immutable TRADE_INVOICE_REQUIRED;
    bytes3 public immutable CURRENCY;
    /// @notice Formats the metadata JSON (created here; holds no state).
    ClaimMetadata public immutable METADATA;
    uint8 private immutable _valueDecimals;

    address private immutable _financingDesk;
    uint32 private _payableCount;
    uint40 private _claimCount;

    mapping(uint256 payableId => Payable) private _payables;
    mapping(uint256 payableId => bytes32[]) private _payableInvoices;
    mapping(uint256 claimId => Claim) private _claims;
    /// @dev 1 + the pieces held, once the account is open (0: never opened, holds nothing).
    /// The member registry opens a supplier's or financier's account when it registers it, so
    /// the first piece a member receives writes a non-zero slot (the 20,000-gas first write is
    /// paid at onboarding, not by the split that reaches a first-time holder).
    mapping(address holder => uint256) private _pieceCounts;
    mapping(address obligor => ObligorAccount) private _obligors;
    /// @dev Touched only by freeze, unfreeze and markOverdue: splits and transfers never read it.
    mapping(uint256 payableId => PayableClock) private _clocks;

    /// @dev Written by the first settlement citing the reference, read by the next ones.
    mapping(bytes32 paymentRef => SettlementReference) private _settlementRefs;

    mapping(uint256 claimId => address) private _tokenApprovals;
    mapping(address holder => mapping(address operator => bool)) private _operatorApprovals;
    mapping(uint256 claimId => uint256) private _approvalRounds;
    mapping(uint256 claimId => mapping(uint256 round => mapping(address operator => uint256))) private _allowances;

    modifier onlyFinancingDesk() {
        if (msg.sender != _financingDesk) revert LedgerCallerUnauthorized(msg.sender);
        _;
    }

    modifier onlyRole(bytes32 role) {
        address sender = _msgSender();
        if (!IAccessControl(address(MEMBERS)).hasRole(role, sender)) revert LedgerCallerUnauthorized(sender);
        _;
    }

    constructor(Platform memory platform, Config memory config) ERC2771Context(platform.forwarder) {
        if (
            platform.ledger != address(this) || platform.members == address(0) || platform.invoices == address(0)
                || platform.desk == address(0) || platform.forwarder == address(0) || config.termCap == 0
                || config.longTermThreshold > config.termCap || config.valueDecimals > 18
                || !_isCurrencyCode(config.currency)
        ) revert LedgerConfigInvalid();
        MEMBERS = IMemberRegistry(platform.members);
        INVOICES = IInvoiceRegistry(platform.invoices);
        _financingDesk = platform.desk;
        emit FinancingDeskBound(platform.desk);
        TERM_CAP = config.termCap;
        LONG_TERM_THRESHOLD = config.longTermThreshold;
        GRACE_PERIOD = config.gracePeriod;
        TRADE_INVOICE_REQUIRED = config.tradeInvoiceRequired;
        CURRENCY = config.currency;
        METADATA = new ClaimMetadata(config.currency, config.valueDecimals);
        _valueDecimals = config.valueDecimals;
    }

    // ================================================================== payables

    /// @inheritdoc IClaimLedger
    function issuePayable(
        address supplier,
        uint128 faceValue,
        uint64 dueDate,
        bytes32[] calldata invoiceIds,
        address clearingAgent
    ) external returns (uint256 payableId, uint256 rootClaimId) {
        _checkIssue(supplier, faceValue, dueDate, invoiceIds.length, clearingAgent);
        (payableId, rootClaimId) = _recordPayable(supplier, faceValue, dueDate, clearingAgent);
        _payableInvoices[payableId] = invoiceIds;

        // The invoice registry is the platform's own contract; it reverts the whole issue when
        // an invoice is not a confirmed one from this supplier to this obligor.
        uint256 invoiceTotal = INVOICES.useForPayable(invoiceIds, supplier, _msgSender(), payableId);
        if (invoiceTotal < faceValue) revert PayableInvoicesInsufficient(invoiceTotal, faceValue);

        _emitIssued(payableId, invoiceIds);
    }

    /// @inheritdoc IClaimLedger
    function cancelPayable(uint256 payableId) external {
        MEMBERS.requireNotPaused();
        Payable storage p = _payableOf(payableId);
        if (p.status != PayableStatus.Issued) revert PayableStatusInvalid(payableId, p.status);
        uint256 rootId = p.rootClaimId;
        Claim storage root = _claims[rootId];
        address sender = _msgSender();
        if (root.holder != sender) revert ClaimNotHolder(rootId, sender);
        if (block.timestamp >= p.dueDate) revert ClaimPastDueDate(rootId, p.dueDate);
        if (root.value != p.faceValue || root.locked != 0 || root.flags != 0 || sender != p.supplier) {
            revert PayableNotCancellable(payableId);
        }
        uint128 face = p.faceValue;
        p.status = PayableStatus.Cancelled;
        root.flags = _CANCELLED;
        --_pieceCounts[sender];
        _obligors[p.obligor].outstanding -= face;
        INVOICES.releaseInvoices(_payableInvoices[payableId], payableId);
        emit PayableCancelled(payableId, rootId);
        emit TransferValue(rootId, 0, face);
        emit Transfer(sender, address(0), rootId);
    }

    /// @inheritdoc IClaimLedger
    function markOverdue(uint256 payableId) external {
        MEMBERS.requireNotPaused();
        Payable storage p = _payableOf(payableId);
        if (p.status != PayableStatus.Issued) revert PayableStatusInvalid(payableId, p.status);
        uint256 deadline = _overdueFrom(payableId, p.dueDate);
        if (block.timestamp <= deadline) revert PayableNotOverdueYet(payableId, deadline);
        p.status = PayableStatus.Overdue;
        address obligor = p.obligor;
        emit PayableOverdue(payableId, obligor, p.faceValue - p.settledValue, uint64(deadline));

        // Three overdue payables within OVERDUE_WINDOW, counted by when each fell overdue (its
        // overdueFrom at marking), not when it was marked: slow or batched marking neither
        // triggers nor dodges the rule. The account keeps the two latest such times
        // (previous ≤ last); the new one joins them in any order, and the three must span at
        // most the window.
        ObligorAccount storage account = _obligors[obligor];
        uint64 at = uint64(deadline);
        uint64 prev = account.previousOverdueAt;
        uint64 last = account.lastOverdueAt;
        uint64 earliest = prev;
        uint64 latest = last;
        if (at >= last) {
            latest = at;
            account.previousOverdueAt = last;
            account.lastOverdueAt = at;
        } else if (at > prev) {
            account.previousOverdueAt = at;
        } else {
            earliest = at;
        }
        bool third = prev != 0 && latest - earliest <= OVERDUE_WINDOW;
        if (third) MEMBERS.suspendForOverdue(obligor);
    }

    /// @inheritdoc IClaimLedger
    function setProgramLimit(address obligor, uint128 programLimit) external onlyRole(Roles.OPERATOR) {
        if (!IAccessControl(address(MEMBERS)).hasRole(Roles.CORE_ENTERPRISE, obligor)) {
            revert IMemberRegistry.MemberRoleMissing(obligor, Roles.CORE_ENTERPRISE);
        }
        ObligorAccount storage account = _obligors[obligor];
        account.programLimit = programLimit;
        uint128 outstanding = account.outstanding;
        emit ProgramLimitSet(obligor, programLimit, outstanding, outstanding > programLimit);
    }

    // ================================================================== claim pieces

    /// @inheritdoc IClaimLedger
    function split(uint256 fromId, address to, uint256 value, bytes32 invoiceId) public returns (uint256 claimId) {
        return _split(fromId, to, value, invoiceId, _BY_HOLDER);
    }

    /// @inheritdoc IClaimLedger
    function transferClaim(uint256 claimId, address to, bytes32 invoiceId) public {
        _transferWhole(claimId, _msgSender(), to, invoiceId, _BY_HOLDER, 0);
    }

    /// @inheritdoc IClaimLedger
    function freezeClaim(uint256 claimId, bytes32 reasonHash) external onlyRole(Roles.OPERATOR) {
        Claim storage c = _claimOf(claimId);
        uint8 f = c.flags;
        if (f & (_SETTLED | _CANCELLED) != 0) revert ClaimNotLive(claimId, _status(c));
        if (f & _FROZEN != 0) revert ClaimIsFrozen(claimId);
        c.flags = f | _FROZEN;
        PayableClock storage clock = _clocks[c.payableId];
        if (clock.frozenPieces++ == 0) clock.frozenSince = uint64(block.timestamp);
        emit ClaimFrozen(claimId, reasonHash);
    }

    /// @inheritdoc IClaimLedger
    function unfreezeClaim(uint256 claimId) external onlyRole(Roles.OPERATOR) {
        Claim storage c = _claimOf(claimId);
        if (c.flags & _FROZEN == 0) revert ClaimNotFrozen(claimId);
        c.flags &= ~_FROZEN;
        uint256 payableId = c.payableId;
        PayableClock storage clock = _clocks[payableId];
        if (--clock.frozenPieces == 0) {
            // The freeze that just ended stopped the clock from its start or the due date,
            // whichever is later; seconds the platform was also paused are counted by the pause.
            uint64 due = _payables[payableId].dueDate;
            uint64 since = clock.frozenSince > due ? clock.frozenSince : due;
            // Computed whatever the times, so an estimate made in the freeze's own second holds.
            uint64 nowTs = uint64(block.timestamp);
            uint64 span = nowTs > since ? nowTs - since : 0;
            clock.frozenSeconds += span - MEMBERS.pausedSeconds(since, nowTs);
        }
        emit ClaimUnfrozen(claimId);
    }

    // ================================================================== settlement

    /// @inheritdoc IClaimLedger
    function settleClaim(uint256 claimId, bytes32 paymentRef) external {
        MEMBERS.requireNotPaused();
        _settle(claimId, paymentRef, false);
    }

    /// @inheritdoc IClaimLedger
    function settleClaims(uint256[] calldata claimIds, bytes32[] calldata paymentRefs) external {
        MEMBERS.requireNotPaused();
        uint256 n = claimIds.length;
        if (n == 0 || n > MAX_SETTLEMENT_BATCH || paymentRefs.length != n) {
            revert SettlementBatchInvalid(n, MAX_SETTLEMENT_BATCH);
        }
        bool agentChecked = false; // a batch checks its clearing agent's standing once
        for (uint256 i; i < n; ++i) {
            agentChecked = _settle(claimIds[i], paymentRefs[i], agentChecked);
        }
    }

    // ================================================================== registry and financing hooks

    /// @inheritdoc IClaimLedger
    function openHolderAccount(address account) external {
        if (msg.sender != address(MEMBERS)) revert LedgerCallerUnauthorized(msg.sender);
        if (_pieceCounts[account] == 0) _pieceCounts[account] = 1;
    }

    /// @inheritdoc IClaimLedger
    function lockForFinancing(uint256 claimId, address applicant, uint128 amount)
        external
        onlyFinancingDesk
        returns (address obligor, uint64 dueDate)
    {
        Claim storage c = _claimOf(claimId);
        if (c.holder != applicant) revert ClaimNotHolder(claimId, applicant);
        Payable storage p = _payables[c.payableId];
        _requireMovable(claimId, c, p.dueDate);
        if (amount == 0) revert ClaimAmountInvalid(amount);
        uint256 available = c.value - c.locked;
        if (amount > available) revert ClaimAmountExceedsAvailable(claimId, amount, available);
        if (c.depth == 0) _touchRoot(c);
        c.locked += amount;
        return (p.obligor, p.dueDate);
    }

    /// @inheritdoc IClaimLedger
    function unlockFromFinancing(uint256 claimId, uint128 amount) external onlyFinancingDesk {
        _claims[claimId].locked -= amount;
    }

    /// @inheritdoc IClaimLedger
    function financeLocked(uint256 claimId, uint128 amount, address financier)
        external
        onlyFinancingDesk
        returns (uint256 financedClaimId)
    {
        Claim storage c = _claimOf(claimId);
        Payable storage p = _payables[c.payableId];
        _requireMovable(claimId, c, p.dueDate);
        c.locked -= amount;
        address holder = c.holder;
        // slither-disable-next-line reentrancy-no-eth -- callee: the FinancingDesk that called us; it never calls out
        if (c.flags & _FINANCED != 0) _releaseExposure(holder, p.obligor, claimId, amount);
        if (amount == c.value) {
            c.holder = financier;
            c.flags = _clearApprovals(claimId, c.flags) | _FINANCED;
            --_pieceCounts[holder];
            _addPiece(financier);
            emit ClaimTransferred(claimId, holder, financier, bytes32(0));
            emit Transfer(holder, financier, claimId);
            return claimId;
        }
        financedClaimId = _mintSplit(c, claimId, holder, financier, amount, _FINANCED, bytes32(0));
    }

    // ================================================================== ERC-3525 / ERC-721

    /// @inheritdoc IERC3525
    /// @dev The holder, an operator approved for the piece (ERC-721) or for all the holder's
    /// pieces, or one with a value allowance of at least `value` (spent) may call it; the
    /// platform's rules are checked against the holder as for {split}. A whole-value transfer
    /// passes the piece itself to `to` and returns its id: no piece of value 0 may exist (I-1),
    /// so no new token is created for it (docs/erc3525.md).
    function transferFrom(uint256 fromTokenId, address to, uint256 value) external returns (uint256) {
        Claim storage c = _claimOf(fromTokenId);
        if (value == 0 || value != c.value) return _split(fromTokenId, to, value, bytes32(0), _BY_VALUE_ALLOWANCE);
        _transferWhole(fromTokenId, c.holder, to, bytes32(0), _BY_VALUE_ALLOWANCE, value);
        _checkOnERC3525Received(to, fromTokenId, fromTokenId, value);
        return fromTokenId;
    }

    /// @inheritdoc IERC3525
    /// @dev Merging value into another piece would give it two parents and break lineage.
    function transferFrom(uint256, uint256, uint256) external pure {
        revert ClaimMergeUnsupported();
    }

    /// @inheritdoc IERC721
    function transferFrom(address from, address to, uint256 tokenId) external {
        _transferWhole(tokenId, from, to, bytes32(0), _BY_TOKEN_APPROVAL, 0);
    }

    /// @inheritdoc IERC721
    function safeTransferFrom(address from, address to, uint256 tokenId) external {
        _transferWhole(tokenId, from, to, bytes32(0), _BY_TOKEN_APPROVAL, 0);
        ERC721Utils.checkOnERC721Received(_msgSender(), from, to, tokenId, "");
    }

    /// @inheritdoc IERC721
    function safeTransferFrom(address from, address to, uint256 tokenId, bytes calldata data) external {
        _transferWhole(tokenId, from, to, bytes32(0), _BY_TOKEN_APPROVAL, 0);
        ERC721Utils.checkOnERC721Received(_msgSender(), from, to, tokenId, data);
    }

    /// @inheritdoc IERC3525
    /// @dev The holder, an operator approved for all its pieces, or the piece's approved
    /// address may allow `operator` up to `value` of the piece (type(uint256).max: unlimited).
    /// The allowance lasts until spent or until the piece changes hands.
    function approve(uint256 tokenId, address operator, uint256 value) external {
        MEMBERS.requireNotPaused();
        Claim storage c = _liveToken(tokenId);
        address holder = c.holder;
        address sender = _msgSender();
        if (sender != holder && !_operatorApprovals[holder][sender] && _tokenApprovals[tokenId] != sender) {
            revert ClaimNotHolder(tokenId, sender);
        }
        if (operator == address(0) || operator == holder) revert ClaimOperatorInvalid(operator);
        c.flags |= _APPROVED;
        _allowances[tokenId][_approvalRounds[tokenId]][operator] = value;
        emit ApprovalValue(tokenId, operator, value);
    }

    /// @inheritdoc IERC721
    /// @dev The holder or an operator approved for all its pieces; `to` zero clears it.
    function approve(address to, uint256 tokenId) external {
        MEMBERS.requireNotPaused();
        Claim storage c = _liveToken(tokenId);
        address holder = c.holder;
        address sender = _msgSender();
        if (sender != holder && !_operatorApprovals[holder][sender]) revert ClaimNotHolder(tokenId, sender);
        c.flags |= _APPROVED;
        _tokenApprovals[tokenId] = to;
        emit Approval(holder, to, tokenId);
    }

    /// @inheritdoc IERC721
    function setApprovalForAll(address operator, bool approved) external {
        MEMBERS.requireNotPaused();
        address sender = _msgSender();
        if (operator == address(0) || operator == sender) revert ClaimOperatorInvalid(operator);
        _operatorApprovals[sender][operator] = approved;
        emit ApprovalForAll(sender, operator, approved);
    }

    /// @inheritdoc IERC3525
    function allowance(uint256 tokenId, address operator) external view returns (uint256) {
        return _allowanceOf(tokenId, _liveToken(tokenId), operator);
    }

    /// @inheritdoc IERC721
    function getApproved(uint256 tokenId) external view returns (address) {
        _liveToken(tokenId);
        return _tokenApprovals[tokenId];
    }

    /// @inheritdoc IERC721
    function isApprovedForAll(address owner, address operator) external view returns (bool) {
        return _operatorApprovals[owner][operator];
    }

    /// @inheritdoc IERC3525
    /// @dev The deployment currency's decimals, fixed at construction.
    function valueDecimals() external view returns (uint8) {
        return _valueDecimals;
    }

    /// @inheritdoc IERC3525
    function balanceOf(uint256 tokenId) external view returns (uint256) {
        return _liveToken(tokenId).value;
    }

    /// @inheritdoc IERC721
    function balanceOf(address owner) external view returns (uint256) {
        if (owner == address(0)) revert ClaimOwnerZero();
        uint256 n = _pieceCounts[owner];
        return n == 0 ? 0 : n - 1;
    }

    /// @inheritdoc IERC721
    function ownerOf(uint256 tokenId) external view returns (address) {
        return _liveToken(tokenId).holder;
    }

    /// @inheritdoc IERC3525
    function slotOf(uint256 tokenId) external view returns (uint256) {
        return _liveToken(tokenId).payableId;
    }

    /// @inheritdoc IERC721Metadata
    /// @dev Answered by METADATA, like every metadata call (`_render`).
    function name() external view returns (string memory) {
        _render();
    }

    /// @inheritdoc IERC721Metadata
    function symbol() external view returns (string memory) {
        _render();
    }

    /// @inheritdoc IERC721Metadata
    /// @dev On-chain JSON: payable, obligor, due date, amount in currency units, holder,
    /// status. Reverts ClaimNotFound for a token that does not exist.
    function tokenURI(uint256) external view returns (string memory) {
        _render();
    }

    /// @inheritdoc IERC3525Metadata
    function contractURI() external view returns (string memory) {
        _render();
    }

    /// @inheritdoc IERC3525Metadata
    /// @dev A slot is a payable: obligor, supplier, face value, due date, status. Reverts
    /// PayableNotFound for an unknown payable.
    function slotURI(uint256) external view returns (string memory) {
        _render();
    }

    /// @inheritdoc IERC165
    /// @dev ERC-165, ERC-721 and its metadata, ERC-3525 and its metadata; not ERC-721
    /// Enumerable (nothing is enumerated on chain, I-9).
    function supportsInterface(bytes4 interfaceId) public view override(ERC165, IERC165) returns (bool) {
        return interfaceId == type(IERC3525).interfaceId || interfaceId == type(IERC721).interfaceId
            || interfaceId == type(IERC3525Metadata).interfaceId || interfaceId == type(IERC721Metadata).interfaceId
            || super.supportsInterface(interfaceId);
    }

    // ================================================================== views

    /// @inheritdoc IClaimLedger
    function getPayable(uint256 payableId) external view returns (Payable memory) {
        return _payables[payableId];
    }

    /// @inheritdoc IClaimLedger
    function payableInvoices(uint256 payableId) external view returns (bytes32[] memory) {
        return _payableInvoices[payableId];
    }

    /// @inheritdoc IClaimLedger
    function claim(uint256 claimId) external view returns (ClaimView memory) {
        return _claimView(claimId);
    }

    function _claimView(uint256 claimId) private view returns (ClaimView memory v) {
        Claim storage c = _claims[claimId];
        if (c.holder == address(0)) return v;
        v = ClaimView({
            id: claimId,
            payableId: c.payableId,
            parentId: c.parentId,
            depth: c.depth,
            holder: c.holder,
            value: c.value,
            locked: c.locked,
            status: _status(c),
            frozen: c.flags & _FROZEN != 0,
            financed: c.flags & _FINANCED != 0,
            dueDate: _payables[c.payableId].dueDate
        });
    }

    /// @inheritdoc IClaimLedger
    function obligorAccount(address obligor) external view returns (ObligorAccount memory) {
        return _obligors[obligor];
    }

    /// @inheritdoc IClaimLedger
    function payableClock(uint256 payableId) external view returns (PayableClock memory) {
        return _clocks[payableId];
    }

    /// @inheritdoc IClaimLedger
    function overdueFrom(uint256 payableId) external view returns (uint256) {
        return _overdueFrom(payableId, _payableOf(payableId).dueDate);
    }

    /// @inheritdoc IClaimLedger
    function settlementReference(bytes32 paymentRef) external view returns (SettlementReference memory) {
        return _settlementRefs[paymentRef];
    }

    /// @inheritdoc IClaimLedger
    function payableCount() external view returns (uint256) {
        return _payableCount;
    }

    /// @inheritdoc IClaimLedger
    function claimCount() external view returns (uint256) {
        return _claimCount;
    }

    /// @notice The deployment's financing desk (fixed at construction).
    function financingDesk() external view returns (address) {
        return _financingDesk;
    }

    // ================================================================== internals

    function _checkIssue(address supplier, uint128 faceValue, uint64 dueDate, uint256 invoiceCount, address clearingAgent)
        private
        view
    {
        address obligor = _msgSender();
        MEMBERS.requireActive(obligor, Roles.CORE_ENTERPRISE);
        if (supplier == obligor) revert PayableSupplierInvalid(supplier);
        MEMBERS.requireActive(supplier, Roles.SUPPLIER);
        if (clearingAgent != address(0)) {
            if (clearingAgent == supplier) revert PayableClearingAgentInvalid(clearingAgent);
            MEMBERS.requireActive(clearingAgent, Roles.CLEARING_AGENT);
        }
        if (faceValue == 0) revert PayableFaceValueInvalid(faceValue);
        uint64 latest = uint64(block.timestamp) + TERM_CAP;
        if (dueDate <= block.timestamp || dueDate > latest) revert PayableDueDateInvalid(dueDate, latest);
        if (invoiceCount == 0 || invoiceCount > MAX_INVOICES_PER_PAYABLE) {
            revert PayableInvoiceCountInvalid(invoiceCount);
        }
    }

    /// @dev Books the face value against the program limit and mints the root piece.
    function _recordPayable(address supplier, uint128 faceValue, uint64 dueDate, address clearingAgent)
        private
        returns (uint256 payableId, uint256 rootClaimId)
    {
        address obligor = _msgSender();
        ObligorAccount storage account = _obligors[obligor];
        if (account.outstanding > account.programLimit) {
            revert PayableObligorOverLimit(obligor, account.outstanding, account.programLimit);
        }
        uint256 outstanding = uint256(account.outstanding) + faceValue;
        if (outstanding > account.programLimit) {
            revert PayableLimitExceeded(obligor, outstanding, account.programLimit);
        }
        account.outstanding = uint128(outstanding);
        payableId = ++_payableCount;
        rootClaimId = ++_claimCount;
        _payables[payableId] = Payable({
            obligor: obligor,
            dueDate: dueDate,
            status: PayableStatus.Issued,
            supplier: supplier,
            issuedAt: uint64(block.timestamp),
            clearingAgent: clearingAgent,
            rootClaimId: uint40(rootClaimId),
            faceValue: faceValue,
            settledValue: 0
        });
        _claims[rootClaimId] = Claim({
            holder: supplier,
            payableId: uint32(payableId),
            parentId: 0,
            depth: 0,
            flags: 0,
            value: faceValue,
            locked: 0
        });
        _addPiece(supplier);
    }

    function _split(uint256 fromId, address to, uint256 value, bytes32 invoiceId, uint8 auth)
        private
        returns (uint256 claimId)
    {
        Claim storage c = _claimOf(fromId);
        address holder = c.holder;
        _authorize(fromId, c, holder, value, auth);
        Payable storage p = _payables[c.payableId];
        _requireMovable(fromId, c, p.dueDate);
        if (to == holder || to == address(0)) revert ClaimRecipientInvalid(to);
        MEMBERS.requireTransfer(holder, to);
        if (value == 0) revert ClaimAmountInvalid(value);
        uint256 available = c.value - c.locked;
        if (value > available) revert ClaimAmountExceedsAvailable(fromId, value, available);
        if (value == c.value) revert ClaimAmountInvalid(value); // a whole piece moves by transferClaim
        // slither-disable-next-line reentrancy-no-eth -- callees: our FinancingDesk and InvoiceRegistry; neither calls out
        if (c.flags & _FINANCED != 0) _releaseExposure(holder, p.obligor, fromId, uint128(value));
        claimId = _mintSplit(c, fromId, holder, to, uint128(value), 0, invoiceId);
    }

    /// @dev Emits from the stored payable (warm reads) to keep the issuing frame's stack small.
    function _emitIssued(uint256 payableId, bytes32[] calldata invoiceIds) private {
        Payable storage p = _payables[payableId];
        uint256 rootClaimId = p.rootClaimId;
        emit PayableIssued(
            payableId,
            p.obligor,
            p.supplier,
            rootClaimId,
            p.faceValue,
            p.dueDate,
            p.clearingAgent,
            invoiceIds,
            p.dueDate - block.timestamp > LONG_TERM_THRESHOLD
        );
        emit Transfer(address(0), p.supplier, rootClaimId);
        emit SlotChanged(rootClaimId, 0, payableId);
        emit TransferValue(0, rootClaimId, p.faceValue);
    }

    /// @dev Creates the child piece and emits; the caller has checked holder, status and amount.
    function _mintSplit(
        Claim storage parent,
        uint256 parentId,
        address from,
        address to,
        uint128 value,
        uint8 flags,
        bytes32 invoiceId
    ) private returns (uint256 claimId) {
        uint16 depth = parent.depth;
        if (depth == type(uint16).max) revert ClaimDepthExceeded(parentId);
        if (depth == 0) _touchRoot(parent);
        ++depth;
        uint32 payableId = parent.payableId;
        claimId = ++_claimCount;
        parent.value -= value;
        _claims[claimId] = Claim({
            holder: to,
            payableId: payableId,
            parentId: uint40(parentId),
            depth: depth,
            flags: flags,
            value: value,
            locked: 0
        });
        _addPiece(to);
        _useTradeInvoice(invoiceId, to, from, value, claimId, flags == 0);
        emit ClaimSplit(parentId, claimId, payableId, from, to, value, depth, invoiceId);
        emit Transfer(address(0), to, claimId);
        emit SlotChanged(claimId, 0, payableId);
        emit TransferValue(parentId, claimId, value);
        _checkOnERC3525Received(to, parentId, claimId, value);
    }

    /// @dev `value`: what a value-allowance move spends (the whole value), else unused.
    function _transferWhole(uint256 claimId, address from, address to, bytes32 invoiceId, uint8 auth, uint256 value)
        private
    {
        Claim storage c = _claimOf(claimId);
        address holder = c.holder;
        if (from != holder) revert ClaimNotHolder(claimId, _msgSender());
        _authorize(claimId, c, holder, value, auth);
        Payable storage p = _payables[c.payableId];
        _requireMovable(claimId, c, p.dueDate);
        if (to == holder || to == address(0)) revert ClaimRecipientInvalid(to);
        MEMBERS.requireTransfer(holder, to);
        if (c.locked != 0) revert ClaimValueLocked(claimId, c.locked);
        uint8 f = _clearApprovals(claimId, c.flags);
        if (c.depth == 0) f |= _TOUCHED;
        c.flags = f & ~_FINANCED;
        c.holder = to;
        if (f & _FINANCED != 0) _releaseExposure(holder, p.obligor, claimId, c.value);
        --_pieceCounts[holder];
        _addPiece(to);
        _useTradeInvoice(invoiceId, to, holder, c.value, claimId, true);
        emit ClaimTransferred(claimId, holder, to, invoiceId);
        emit Transfer(holder, to, claimId);
    }

    /// @dev A trade transfer may (or, by deployment, must) cite an invoice from the recipient to
    /// the holder covering the value; financing moves are sales to a financier and cite none.
    function _useTradeInvoice(bytes32 invoiceId, address seller, address buyer, uint256 value, uint256 claimId, bool trade)
        private
    {
        if (invoiceId != bytes32(0)) {
            INVOICES.useForTransfer(invoiceId, seller, buyer, value, claimId);
        } else if (trade && TRADE_INVOICE_REQUIRED) {
            revert ClaimTradeInvoiceRequired();
        }
    }

    /// @dev Returns whether the caller was checked as an active clearing agent (`agentChecked`
    /// in: already checked in this transaction, its standing cannot change meanwhile).
    function _settle(uint256 claimId, bytes32 paymentRef, bool agentChecked) private returns (bool) {
        if (paymentRef == bytes32(0)) revert SettlementReferenceInvalid();
        Claim storage c = _claimOf(claimId);
        uint8 f = c.flags;
        if (f & (_SETTLED | _CANCELLED) != 0) revert ClaimNotLive(claimId, _status(c));
        if (f & _FROZEN != 0) revert ClaimIsFrozen(claimId);
        uint256 payableId = c.payableId;
        Payable storage p = _payables[payableId];
        address settler = _msgSender();
        if (settler != p.obligor) {
            // The clearing agent must still be one when it records a payment: an active member
            // with the role (a suspended agent, or one that lost the role, settles nothing). It
            // is never the payable's own supplier: issuePayable refuses that. Nor does it record
            // the payment of a piece it holds (one it financed, or took): that would be its own
            // word that it was paid, clearing its exposure and the obligor's limit unpaid.
            if (settler != p.clearingAgent) revert PayableNotSettler(payableId, settler);
            if (c.holder == settler) revert ClaimSettlerIsHolder(claimId, settler);
            if (!agentChecked) {
                MEMBERS.requireActive(settler, Roles.CLEARING_AGENT);
                agentChecked = true;
            }
        }
        if (block.timestamp < p.dueDate) revert PayableNotDue(payableId, p.dueDate);
        // Locked → Settled is no transition (SPEC §2): a pending application's later unlock
        // would change the Settled piece (I-8). Every application lapses before the due date,
        // so anyone can expire it first.
        if (c.locked != 0) revert ClaimValueLocked(claimId, c.locked);
        c.flags = f | _SETTLED;
        uint128 value = c.value;
        address holder = c.holder;
        _citePaymentRef(paymentRef, holder, payableId);
        uint128 settled = p.settledValue + value;
        p.settledValue = settled;
        _obligors[p.obligor].outstanding -= value;
        // slither-disable-next-line reentrancy-no-eth -- callee: our own FinancingDesk, which never calls out
        if (f & _FINANCED != 0) _releaseExposure(holder, p.obligor, claimId, value);
        emit ClaimSettled(claimId, payableId, holder, value, paymentRef);
        if (settled == p.faceValue) {
            p.status = PayableStatus.Settled;
            emit PayableSettled(payableId);
        }
        return agentChecked;
    }

    /// @dev A bank payment pays one holder: its reference may cover more of that holder's pieces
    /// of the payable (in the same batch or a later one), never another holder's or payable's.
    /// The first citation writes one slot; a repeat costs a warm read.
    function _citePaymentRef(bytes32 paymentRef, address holder, uint256 payableId) private {
        SettlementReference memory used = _settlementRefs[paymentRef];
        if (used.holder == address(0)) {
            _settlementRefs[paymentRef] = SettlementReference(holder, uint32(payableId));
        } else if (used.holder != holder || used.payableId != payableId) {
            revert SettlementReferenceUsed(paymentRef, used.holder, used.payableId);
        }
    }

    /// @dev Due date + grace + the seconds since the due date, up to now, that the overdue clock
    /// stood still: ended freezes (net of pauses), the freeze in progress, and every pause. A
    /// freeze in progress stops the clock from its start (or the due date) to now, pauses
    /// included, so pauses are counted only up to there.
    function _overdueFrom(uint256 payableId, uint64 due) private view returns (uint256) {
        PayableClock storage clock = _clocks[payableId];
        uint256 stopped = clock.frozenSeconds;
        uint64 nowTs = uint64(block.timestamp);
        if (nowTs > due) {
            uint64 runsTo = nowTs;
            if (clock.frozenPieces != 0) {
                uint64 since = clock.frozenSince;
                runsTo = since > due ? since : due;
                stopped += nowTs - runsTo;
            }
            stopped += MEMBERS.pausedSeconds(due, runsTo);
        }
        return uint256(due) + GRACE_PERIOD + stopped;
    }

    /// @dev Lets the caller move `value` of the piece held by `holder`: the holder itself, or
    /// (standard entry points only) an operator approved for all the holder's pieces or for
    /// this one, or (value transfers) one with a sufficient value allowance, which is spent.
    /// An operator must be an active member; everything else is checked against the holder.
    function _authorize(uint256 claimId, Claim storage c, address holder, uint256 value, uint8 auth) private {
        address sender = _msgSender();
        if (sender == holder) return;
        if (auth == _BY_HOLDER) revert ClaimNotHolder(claimId, sender);
        if (!_operatorApprovals[holder][sender] && _tokenApprovals[claimId] != sender) {
            uint256 allowed = auth == _BY_VALUE_ALLOWANCE ? _allowanceOf(claimId, c, sender) : 0;
            if (allowed == 0) revert ClaimNotHolder(claimId, sender);
            if (allowed < value) revert ClaimAllowanceExceeded(claimId, sender, allowed, value);
            if (allowed != type(uint256).max) {
                allowed -= value;
                _allowances[claimId][_approvalRounds[claimId]][sender] = allowed;
                emit ApprovalValue(claimId, sender, allowed);
            }
        }
        MEMBERS.requireMember(sender);
    }

    function _allowanceOf(uint256 claimId, Claim storage c, address operator) private view returns (uint256) {
        if (c.flags & _APPROVED == 0) return 0;
        return _allowances[claimId][_approvalRounds[claimId]][operator];
    }

    /// @dev The piece changes hands: its approvals end (returns the flags without _APPROVED).
    function _clearApprovals(uint256 claimId, uint8 flags) private returns (uint8) {
        if (flags & _APPROVED == 0) return flags;
        delete _tokenApprovals[claimId];
        ++_approvalRounds[claimId];
        return flags & ~_APPROVED;
    }

    /// @dev ERC-3525: a contract recipient that declares IERC3525Receiver (ERC-165) is told of
    /// the value it received and may refuse it (any answer but the selector, or a revert).
    /// Accounts without code, the usual members, cost only the code-size check.
    function _checkOnERC3525Received(address to, uint256 fromId, uint256 toId, uint256 value) private {
        if (to.code.length == 0) return;
        bool declared;
        try IERC165(to).supportsInterface{gas: 30_000}(type(IERC3525Receiver).interfaceId) returns (bool yes) {
            declared = yes;
        } catch {}
        if (!declared) return;
        try IERC3525Receiver(to).onERC3525Received(_msgSender(), fromId, toId, value, "") returns (bytes4 answer) {
            if (answer != IERC3525Receiver.onERC3525Received.selector) revert ClaimReceiverRejected(to);
        } catch (bytes memory reason) {
            if (reason.length == 0) revert ClaimReceiverRejected(to);
            assembly ("memory-safe") {
                revert(add(reason, 0x20), mload(reason))
            }
        }
    }

    /// @dev Answers the current call (a metadata view) with METADATA's answer to the same
    /// calldata, or its revert: the ledger keeps no JSON code of its own (24 KiB limit).
    function _render() private view {
        address renderer = address(METADATA);
        assembly {
            calldatacopy(0, 0, calldatasize())
            let ok := staticcall(gas(), renderer, 0, calldatasize(), 0, 0)
            returndatacopy(0, 0, returndatasize())
            if iszero(ok) { revert(0, returndatasize()) }
            return(0, returndatasize())
        }
    }

    function _isCurrencyCode(bytes3 code) private pure returns (bool) {
        for (uint256 i; i < 3; ++i) {
            if (code[i] < "A" || code[i] > "Z") return false;
        }
        return true;
    }

    /// @dev One more piece for `holder` (opening its account if the registry has not).
    function _addPiece(address holder) private {
        uint256 n = _pieceCounts[holder];
        _pieceCounts[holder] = (n == 0 ? 1 : n) + 1;
    }

    function _touchRoot(Claim storage root) private {
        uint8 f = root.flags;
        if (f & _TOUCHED == 0) root.flags = f | _TOUCHED;
    }

    function _releaseExposure(address financier, address obligor, uint256 claimId, uint128 value) private {
        IFinancingDesk(_financingDesk).releaseExposure(financier, obligor, claimId, value);
    }

    /// @dev Live, not frozen and before the due date (I-7).
    function _requireMovable(uint256 claimId, Claim storage c, uint64 dueDate) private view {
        uint8 f = c.flags;
        if (f & (_SETTLED | _CANCELLED) != 0) revert ClaimNotLive(claimId, _status(c));
        if (f & _FROZEN != 0) revert ClaimIsFrozen(claimId);
        if (block.timestamp >= dueDate) revert ClaimPastDueDate(claimId, dueDate);
    }

    function _claimOf(uint256 claimId) private view returns (Claim storage c) {
        c = _claims[claimId];
        if (c.holder == address(0)) revert ClaimNotFound(claimId);
    }

    /// @dev A minted, not cancelled piece (ERC-721 reads revert for others).
    function _liveToken(uint256 tokenId) private view returns (Claim storage c) {
        c = _claims[tokenId];
        if (c.holder == address(0) || c.flags & _CANCELLED != 0) revert ClaimNotFound(tokenId);
    }

    function _payableOf(uint256 payableId) private view returns (Payable storage p) {
        p = _payables[payableId];
        if (p.status == PayableStatus.None) revert PayableNotFound(payableId);
    }

    function _status(Claim storage c) private view returns (ClaimStatus) {
        uint8 f = c.flags;
        if (f & _CANCELLED != 0) return ClaimStatus.Cancelled;
        if (f & _SETTLED != 0) return ClaimStatus.Settled;
        if (f & _FROZEN != 0) return ClaimStatus.Frozen;
        if (f & _FINANCED != 0) return ClaimStatus.Financed;
        if (c.locked != 0) return ClaimStatus.Locked;
        return ClaimStatus.Active;
    }
}
