/// Limits of the configuration language. Each protects the daemon from a file that is
/// not a configuration at all (a binary, a log, a runaway generator).
package enum ConfigLimits {
    /// A real configuration is a few KB; a megabyte is certainly something else.
    package static let maximumFileSize = 1 << 20
    /// Arrays hold names and addresses: nesting deeper than this is a mistake.
    package static let maximumArrayDepth = 8
    /// `include` inside an included file is allowed, but not a chain this long (or a cycle).
    package static let maximumIncludeDepth = 8
    /// An `include` glob that matches more files than this is almost certainly wrong.
    package static let maximumIncludedFiles = 10_000
    /// Keys and table names are identifiers, not paragraphs.
    package static let maximumKeyLength = 256
    /// The largest size a size key may hold (`max_message_size`): a message is held in memory
    /// while it is parsed, so 1 GB is already far beyond what a mailbox should accept; a larger
    /// value is a typo that would also overflow the arithmetic on sizes.
    package static let maximumSize = 1 << 30
}
