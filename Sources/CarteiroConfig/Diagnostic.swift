/// One finding about a configuration: an error stops the configuration from being used,
/// a warning is printed and the configuration is used anyway.
package struct Diagnostic: Sendable, Hashable, CustomStringConvertible {
    package enum Severity: String, Sendable, Hashable {
        case error
        case warning
    }

    package var severity: Severity
    package var location: SourceLocation
    package var message: String

    package init(_ severity: Severity, at location: SourceLocation, _ message: String) {
        self.severity = severity
        self.location = location
        self.message = message
    }

    /// `PATH:LINE:COLUMN: message` for errors, `PATH:LINE:COLUMN: warning: message` for warnings.
    /// One line, always: control characters from the file are shown escaped.
    package var description: String {
        let text = message.unicodeScalars.contains(where: { $0.value < 0x20 })
            ? String(message.unicodeScalars.map { $0.value < 0x20 ? "\\u{\(String($0.value, radix: 16))}" : String($0) }.joined())
            : message
        switch severity {
        case .error: return "\(location): \(text)"
        case .warning: return "\(location): warning: \(text)"
        }
    }
}

/// Collects diagnostics in the order they are found, with a cap so that a binary file
/// fed as configuration does not produce a million lines.
package struct DiagnosticList: Sendable {
    package private(set) var items: [Diagnostic] = []
    /// Beyond this many errors in one file the rest are summarised in one line.
    package static let maximumErrorsPerFile = 100
    private var errorsPerFile: [String: Int] = [:]

    package init() {}

    package var errors: [Diagnostic] { items.filter { $0.severity == .error } }
    package var warnings: [Diagnostic] { items.filter { $0.severity == .warning } }
    package var hasErrors: Bool { items.contains { $0.severity == .error } }

    package mutating func error(_ location: SourceLocation, _ message: String) {
        let count = errorsPerFile[location.file, default: 0] + 1
        errorsPerFile[location.file] = count
        if count < Self.maximumErrorsPerFile {
            items.append(Diagnostic(.error, at: location, message))
        } else if count == Self.maximumErrorsPerFile {
            items.append(Diagnostic(.error, at: location, "too many errors in this file; stopped reporting them"))
        }
    }

    package mutating func warning(_ location: SourceLocation, _ message: String) {
        items.append(Diagnostic(.warning, at: location, message))
    }

    package mutating func append(contentsOf other: DiagnosticList) {
        for item in other.items {
            switch item.severity {
            case .error: error(item.location, item.message)
            case .warning: items.append(item)
            }
        }
    }

    /// Sorted by file (in the order files were first named), then line and column.
    package func sorted(fileOrder: [String]) -> [Diagnostic] {
        let rank = Dictionary(fileOrder.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        return items.enumerated().sorted { lhs, rhs in
            let l = lhs.element.location, r = rhs.element.location
            let lf = rank[l.file] ?? Int.max, rf = rank[r.file] ?? Int.max
            if lf != rf { return lf < rf }
            if l.file != r.file { return l.file < r.file }
            if l.line != r.line { return l.line < r.line }
            if l.column != r.column { return l.column < r.column }
            return lhs.offset < rhs.offset
        }.map(\.element)
    }
}
