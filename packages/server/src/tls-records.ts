/**
 * Follows TLS record framing (RFC 8446 §5.1: a 5-byte header whose last two bytes are the body length) at the
 * start of a byte stream, to find the byte where clear text begins. After CCC (RFC 4217 §6) the client's last
 * TLS records (its close_notify) and its first clear-text command can arrive in one TCP segment; the records must
 * reach the TLS layer (or be dropped) and the command must reach the command reader, whatever the chunking.
 *
 * A record starts with a content type of 20–23; an FTP command starts with a printable letter, so one byte at a
 * record boundary tells the two apart.
 */
export class TlsRecordFramer {
  /** Header bytes of the current record still to come (0: at a record boundary or inside a body). */
  private headerLeft = 0;
  private lengthHigh = 0;
  private bodyLeft = 0;
  /** Clear text has begun: every later byte is clear text. */
  clearText = false;

  /** How many leading bytes of `chunk` belong to TLS records; once clear text starts, {@link clearText} is set. */
  records(chunk: Buffer): number {
    if (this.clearText) return 0;
    let i = 0;
    while (i < chunk.length) {
      if (this.bodyLeft > 0) {
        const n = Math.min(this.bodyLeft, chunk.length - i);
        this.bodyLeft -= n;
        i += n;
      } else if (this.headerLeft > 0) {
        // Header bytes after the content type: version (2), then the body length (2).
        const byte = chunk[i++]!;
        this.headerLeft--;
        if (this.headerLeft === 1) this.lengthHigh = byte;
        else if (this.headerLeft === 0) this.bodyLeft = (this.lengthHigh << 8) | byte;
      } else if (chunk[i]! >= 20 && chunk[i]! <= 23) {
        this.headerLeft = 4;
        i++;
      } else {
        this.clearText = true;
        return i;
      }
    }
    return i;
  }
}
