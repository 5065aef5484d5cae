// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.30;

/// @title Tierflow invoice registry: the trade background of every payable and transfer
/// @notice The chain holds only hashes: the invoice id is the fingerprint
/// keccak256(normalised seller tax id, invoice code, invoice number), computed off chain.
/// A fingerprint and a document hash can each be registered once, ever.
interface IInvoiceRegistry {
    /// @notice Registered → Confirmed → Used, or Registered|Confirmed → Voided.
    enum InvoiceStatus {
        None,
        Registered,
        Confirmed,
        Used,
        Voided
    }

    struct Invoice {
        address seller;
        uint64 issueDate;
        InvoiceStatus status;
        address buyer;
        /// @dev The payable this invoice backs while Used by one (0 otherwise: unused, used by a
        /// transfer, or voided). Release checks it (I-3: one live payable per invoice).
        uint32 payableId;
        uint128 amount;
        bytes32 documentHash;
    }

    /// @notice The fingerprint `invoiceId` was registered before.
    error InvoiceAlreadyRegistered(bytes32 invoiceId);
    /// @notice The document hash was registered before.
    error InvoiceDocumentAlreadyRegistered(bytes32 documentHash);
    /// @notice No invoice has id `invoiceId`.
    error InvoiceNotFound(bytes32 invoiceId);
    /// @notice The invoice is not in a status this action applies to.
    error InvoiceStatusInvalid(bytes32 invoiceId, InvoiceStatus status);
    /// @notice Only the buyer confirms.
    error InvoiceNotBuyer(bytes32 invoiceId, address caller);
    /// @notice Only the seller (or an operator) voids.
    error InvoiceNotSeller(bytes32 invoiceId, address caller);
    /// @notice Amount must be > 0.
    error InvoiceAmountInvalid(uint256 amount);
    /// @notice Issue date must be set and not in the future.
    error InvoiceIssueDateInvalid(uint64 issueDate);
    /// @notice A zero id or zero document hash.
    error InvoiceHashInvalid();
    /// @notice The buyer must be another member.
    error InvoiceBuyerInvalid(address buyer);
    /// @notice The invoice is not from `seller` to `buyer` as the use requires.
    error InvoicePartiesMismatch(bytes32 invoiceId, address seller, address buyer);
    /// @notice The invoice amount `amount` does not cover `needed`.
    error InvoiceAmountInsufficient(bytes32 invoiceId, uint256 amount, uint256 needed);
    /// @notice Only the platform's ledger contracts may mark invoices used or release them.
    error InvoiceCallerNotLedger(address caller);
    /// @dev Release of an invoice that does not back payable `payableId` (not Used by it).
    error InvoiceNotUsedByPayable(bytes32 invoiceId, uint256 payableId);
    /// @dev The deployment's addresses do not name this contract (a wrong prediction).
    error InvoicePlatformInvalid();

    event InvoiceRegistered(
        bytes32 indexed invoiceId,
        address indexed seller,
        address indexed buyer,
        uint128 amount,
        uint64 issueDate,
        bytes32 documentHash
    );
    event InvoiceConfirmed(bytes32 indexed invoiceId);
    event InvoiceVoided(bytes32 indexed invoiceId, address by);
    /// @notice The invoice now backs payable `payableId` (claimId 0) or the transfer of `claimId`.
    event InvoiceUsed(bytes32 indexed invoiceId, uint256 indexed payableId, uint256 claimId);
    /// @notice The payable it backed was cancelled: the invoice is Confirmed again.
    event InvoiceReleased(bytes32 indexed invoiceId, uint256 indexed payableId);

    /// @notice Registers an invoice sold by the caller to `buyer`.
    /// Requirements: not paused; caller an active supplier; buyer a member other than the caller;
    /// amount > 0; 0 < issueDate ≤ now; id and document hash non-zero and never seen before.
    /// Emits {InvoiceRegistered}.
    function registerInvoice(
        bytes32 invoiceId,
        address buyer,
        uint128 amount,
        uint64 issueDate,
        bytes32 documentHash
    ) external;

    /// @notice The buyer says the invoice is genuine. Requirements: not paused; caller is the
    /// active buyer; status Registered. Emits {InvoiceConfirmed}.
    function confirmInvoice(bytes32 invoiceId) external;

    /// @notice Voids an unused invoice. Requirements: not paused; caller the seller or an
    /// operator; status Registered or Confirmed. Emits {InvoiceVoided}.
    function voidInvoice(bytes32 invoiceId) external;

    /// @notice Marks confirmed invoices from `seller` to `buyer` Used by payable `payableId`
    /// and returns their total. Requirements: caller is the deployment's claim ledger. Emits {InvoiceUsed} each.
    function useForPayable(bytes32[] calldata invoiceIds, address seller, address buyer, uint256 payableId)
        external
        returns (uint256 total);

    /// @notice Marks one confirmed invoice from `seller` to `buyer` of at least `value` Used by
    /// the transfer of `claimId`. Requirements: caller is the deployment's claim ledger. Emits {InvoiceUsed}.
    function useForTransfer(bytes32 invoiceId, address seller, address buyer, uint256 value, uint256 claimId)
        external;

    /// @notice Returns the invoices of a cancelled payable to Confirmed.
    /// Requirements: caller is the deployment's claim ledger; each invoice Used by payable
    /// `payableId` (never a voided one, nor one backing another payable or a transfer).
    /// Emits {InvoiceReleased} each.
    function releaseInvoices(bytes32[] calldata invoiceIds, uint256 payableId) external;

    /// @notice The invoice `invoiceId` (status None when unknown).
    function invoice(bytes32 invoiceId) external view returns (Invoice memory);
}
