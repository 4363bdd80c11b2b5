/// What one line (or one multi-line construct) of a configuration file says.
package enum ConfigStatement: Sendable, Hashable {
    /// `[a.b.c]`: the keys that follow belong to this table.
    case header(path: [String], location: SourceLocation)
    /// `key = value`, or `a.b = value` (a dotted key names a sub-table of the current one).
    case assignment(key: [String], keyLocation: SourceLocation, value: ConfigValue)
}
