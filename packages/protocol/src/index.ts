/**
 * `@ftp/protocol`: the FTP wire format, pure and I/O-free.
 *
 * Bytes to command lines, command arguments to typed values, and typed
 * values back to reply text and listing lines. No sockets, no file system,
 * no dependencies; usable by servers and clients alike.
 *
 * @packageDocumentation
 */
export { ProtocolError } from './errors.js';
export type { ProtocolErrorCode } from './errors.js';

export { LineReader, DEFAULT_MAX_LINE_LENGTH } from './line-reader.js';
export type { LineEvent, LineReaderOptions } from './line-reader.js';

export { decodeEscaped, encodeEscaped, escapedByteLength, hasByteEscapes, hexForEscapes, latin1ForEscapes } from './byte-escapes.js';

export { parseCommand } from './command.js';
export type { ParsedCommand } from './command.js';

export { ReplyCode } from './codes.js';
export type { ReplyCodeValue, ReplyCodeName } from './codes.js';

export { formatReply, formatReplyPiece, quotePath, unquotePath } from './reply.js';

export { ReplyParser } from './reply-parser.js';
export type { Reply, ReplyParserOptions } from './reply-parser.js';

export {
  parseHostPort,
  formatHostPort,
  formatPasvReplyText,
  parsePasvReply,
  parseEprt,
  formatEprt,
  formatEpsvReplyText,
  parseEpsvReply,
  parseEpsvArg,
} from './address.js';
export type { HostPort, ExtendedAddress, EpsvArg } from './address.js';

export {
  parseType,
  parseMode,
  parseStru,
  parseRestOffset,
  parseAllo,
  parseFtpTime,
  formatFtpTime,
  parseMfmt,
  parseSiteUtime,
  parseOpts,
  parseSiteCommand,
  parseSiteChmod,
  parseHashRange,
  parseHashAlgorithm,
  formatHashFeat,
  formatHashReplyText,
  HASH_ALGORITHMS,
} from './args.js';
export type {
  TypeSpec,
  TransferMode,
  FileStructure,
  AlloArgs,
  OptsArgs,
  HashRange,
  SiteCommand,
  HashAlgorithm,
} from './args.js';

export { formatListLine, formatNlstLine, formatMode, formatListDate, sanitizeName } from './listing.js';
export type { ListEntry } from './listing.js';

export {
  formatFacts,
  formatFeatFacts,
  parseOptsMlst,
  formatOptsMlstReply,
  SUPPORTED_FACTS,
  DEFAULT_FACTS,
} from './facts.js';
export type { MlsxFact, FactEntry, FormatFactsOptions } from './facts.js';

export { AsciiEncoder, AsciiDecoder } from './ascii.js';

export { parseProxyHeader } from './proxy.js';
export type { ProxyHeader, ProxyEndpoint } from './proxy.js';
