/// Limits of the message parser. A message beyond them is still handed on (flagged), never
/// allowed to exhaust memory or recursion.
package enum MessageLimits {
    /// Real messages carry a few dozen fields; long Received chains reach a few hundred.
    package static let maximumHeaderFields = 2000
    /// A header block larger than this is an attack or a broken generator.
    package static let maximumHeaderBytes = 1 << 20
    /// multipart inside multipart inside …: deeper than this is not written by a mail client.
    package static let maximumMIMEDepth = 24
    /// Parts in one message, all levels counted.
    package static let maximumParts = 2000
    /// What one part may decode to (a BinHex run, a TNEF attachment, compressed RTF): past it,
    /// the part is kept as it came.
    package static let maximumDecodedBytes = 64 << 20
}
