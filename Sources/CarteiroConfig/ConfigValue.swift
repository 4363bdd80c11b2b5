/// A value as written in the file, before the schema gives it a meaning
/// (a duration and a size are strings here).
package struct ConfigValue: Sendable, Hashable {
    package enum Kind: Sendable, Hashable {
        case string(String)
        case integer(Int)
        case boolean(Bool)
        case array([ConfigValue])
        /// The value has a syntax error, already reported: the key exists, its value is unknown.
        case invalid
    }

    package var kind: Kind
    package var location: SourceLocation

    package init(_ kind: Kind, at location: SourceLocation) {
        self.kind = kind
        self.location = location
    }

    /// How the value is named in an error message: "a string", "an integer" …
    package var typeDescription: String {
        switch kind {
        case .string: "a string"
        case .integer: "an integer"
        case .boolean: "a boolean"
        case .array: "an array"
        case .invalid: "an invalid value"
        }
    }
}
