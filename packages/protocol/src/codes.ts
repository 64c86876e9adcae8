/**
 * FTP reply codes, named.
 *
 * RFC 959 §4.2.1–4.2.2 unless noted: RFC 1639 (228), RFC 2228 (security
 * extensions: 232, 234, 235, 334–336, 431, 533–537, 631–633), RFC 2428
 * (522), RFC 3659 (554, 555). RFC 4217 §9 uses 536 for a PROT level that
 * the mechanism does not support and 534 for one refused by policy.
 *
 * @module
 */

/**
 * Reply codes by name.
 *
 * @example
 * ```ts
 * formatReply(ReplyCode.PathCreated, `${quotePath('/a"b')} created`);
 * ```
 */
export const ReplyCode = {
  /** 110 Restart marker reply (`MARK yyyy = mmmm`). */
  RestartMarker: 110,
  /** 120 Service ready in nnn minutes. */
  ServiceReadyIn: 120,
  /** 125 Data connection already open; transfer starting. */
  DataConnectionAlreadyOpen: 125,
  /** 150 File status okay; about to open data connection. */
  FileStatusOk: 150,
  /** 200 Command okay. */
  CommandOk: 200,
  /** 202 Command not implemented, superfluous at this site. */
  CommandNotImplementedSuperfluous: 202,
  /** 211 System status, or system help reply (also FEAT, RFC 2389 §3.2). */
  SystemStatus: 211,
  /** 212 Directory status. */
  DirectoryStatus: 212,
  /** 213 File status (also SIZE and MDTM, RFC 3659 §3–4; HASH). */
  FileStatus: 213,
  /** 214 Help message. */
  HelpMessage: 214,
  /** 215 NAME system type. */
  SystemType: 215,
  /** 220 Service ready for new user. */
  ServiceReady: 220,
  /** 221 Service closing control connection. */
  ServiceClosing: 221,
  /** 225 Data connection open; no transfer in progress. */
  DataConnectionOpen: 225,
  /** 226 Closing data connection; requested file action successful. */
  ClosingDataConnection: 226,
  /** 227 Entering Passive Mode (h1,h2,h3,h4,p1,p2). */
  EnteringPassiveMode: 227,
  /** 228 Entering Long Passive Mode (RFC 1639). */
  EnteringLongPassiveMode: 228,
  /** 229 Entering Extended Passive Mode (|||port|) (RFC 2428 §3). */
  EnteringExtendedPassiveMode: 229,
  /** 230 User logged in, proceed. */
  UserLoggedIn: 230,
  /** 232 User logged in, authorized by security data exchange (RFC 2228). */
  UserLoggedInAuthorized: 232,
  /** 234 Security data exchange complete: AUTH accepted (RFC 2228, RFC 4217 §4). */
  AuthOk: 234,
  /** 235 Security data exchange completed successfully (RFC 2228 ADAT). */
  SecurityDataExchangeOk: 235,
  /** 250 Requested file action okay, completed. */
  FileActionOk: 250,
  /** 257 "PATHNAME" created (RFC 959 Appendix II). */
  PathCreated: 257,
  /** 331 User name okay, need password. */
  NeedPassword: 331,
  /** 332 Need account for login. */
  NeedAccount: 332,
  /** 334 Requested security mechanism is ok (RFC 2228). */
  SecurityMechanismOk: 334,
  /** 335 Security data is acceptable; more is required (RFC 2228). */
  SecurityDataAcceptable: 335,
  /** 336 Username okay, need password; challenge is "…" (RFC 2228). */
  NeedPasswordChallenge: 336,
  /** 350 Requested file action pending further information (RNFR, REST, RANG). */
  FileActionPending: 350,
  /** 421 Service not available, closing control connection. */
  ServiceNotAvailable: 421,
  /** 425 Can't open data connection. */
  CantOpenDataConnection: 425,
  /** 426 Connection closed; transfer aborted. */
  ConnectionClosedTransferAborted: 426,
  /** 431 Need some unavailable resource to process security (RFC 2228). */
  NeedUnavailableResource: 431,
  /** 450 Requested file action not taken (file unavailable, e.g. busy). */
  FileActionNotTaken: 450,
  /** 451 Requested action aborted: local error in processing. */
  LocalError: 451,
  /** 452 Requested action not taken: insufficient storage space in system. */
  InsufficientStorage: 452,
  /** 500 Syntax error, command unrecognized (also: command line too long). */
  SyntaxError: 500,
  /** 501 Syntax error in parameters or arguments. */
  SyntaxErrorInArguments: 501,
  /** 502 Command not implemented. */
  CommandNotImplemented: 502,
  /** 503 Bad sequence of commands. */
  BadSequence: 503,
  /** 504 Command not implemented for that parameter. */
  ParameterNotImplemented: 504,
  /** 522 Network protocol not supported, use (1,2) (RFC 2428 §2–3). */
  NetworkProtocolNotSupported: 522,
  /** 530 Not logged in. */
  NotLoggedIn: 530,
  /** 532 Need account for storing files. */
  NeedAccountForStoring: 532,
  /** 533 Command protection level denied for policy reasons (RFC 2228). */
  CommandProtectionDenied: 533,
  /** 534 Request denied for policy reasons (RFC 2228; RFC 4217 §9–10, e.g. TLS required). */
  PolicyRequiresSecure: 534,
  /** 535 Failed security check (RFC 2228). */
  FailedSecurityCheck: 535,
  /** 536 Requested PROT level not supported by mechanism (RFC 2228, RFC 4217 §9). */
  ProtectionLevelNotSupported: 536,
  /** 537 Command protection level not supported by security mechanism (RFC 2228). */
  CommandProtectionNotSupported: 537,
  /** 550 Requested action not taken: file unavailable (not found, no access). */
  FileUnavailable: 550,
  /** 551 Requested action aborted: page type unknown. */
  PageTypeUnknown: 551,
  /** 552 Requested file action aborted: exceeded storage allocation. */
  ExceededStorage: 552,
  /** 553 Requested action not taken: file name not allowed. */
  FileNameNotAllowed: 553,
  /** 554 Requested action not taken: invalid REST parameter (RFC 3659 §5.4). */
  InvalidRestParameter: 554,
  /** 555 Requested action not taken: type or stru mismatch (RFC 3659 §5.4). */
  TypeOrStruMismatch: 555,
  /** 631 Integrity protected reply (RFC 2228). */
  IntegrityProtectedReply: 631,
  /** 632 Confidentiality and integrity protected reply (RFC 2228). */
  PrivacyProtectedReply: 632,
  /** 633 Confidentiality protected reply (RFC 2228). */
  ConfidentialityProtectedReply: 633,
} as const;

/** Any code of {@link ReplyCode}. */
export type ReplyCodeValue = (typeof ReplyCode)[keyof typeof ReplyCode];

/** Any name of {@link ReplyCode}. */
export type ReplyCodeName = keyof typeof ReplyCode;
