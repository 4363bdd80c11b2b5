/// The tables of one configuration (a main file and everything it includes), with every key
/// and value where it was written. Built from statements; knows nothing of the schema.
package struct ConfigDocument: Sendable {
    package struct Entry: Sendable, Hashable {
        package var key: String
        package var keyLocation: SourceLocation
        package var value: ConfigValue
    }

    package struct Table: Sendable {
        package var path: [String]
        /// Where the header stands; for an implicit table, the header that implied it.
        package var location: SourceLocation
        /// True while the table exists only because a deeper header or dotted key named it.
        package var isImplicit: Bool
        /// A second definition of a table: reported, and its keys kept apart so they cause no more errors.
        package var isDuplicate = false
        package private(set) var entries: [Entry] = []

        package func entry(_ key: String) -> Entry? { entries.first { $0.key == key } }

        mutating func add(_ entry: Entry) { entries.append(entry) }
    }

    package private(set) var tables: [Table] = []
    private var indexByPath: [[String]: Int] = [:]

    /// `file` is the main file: the root table's location names it.
    package init(file: String) {
        tables.append(Table(path: [], location: SourceLocation(file: file, line: 1, column: 1), isImplicit: true))
        indexByPath[[]] = 0
    }

    package var root: Table { tables[0] }

    package func table(_ path: [String]) -> Table? { indexByPath[path].map { tables[$0] } }

    /// Adds one file's statements. Keys before any header land in the root table.
    package mutating func add(_ statements: [ConfigStatement], diagnostics: inout DiagnosticList) {
        var current = 0
        for statement in statements {
            switch statement {
            case .header(let path, let location):
                current = defineTable(path, at: location, diagnostics: &diagnostics)
            case .assignment(let key, let keyLocation, let value):
                var target = current
                if key.count > 1 {
                    let subPath = tables[current].path + key.dropLast()
                    target = implicitTable(subPath, at: keyLocation)
                }
                let name = key[key.count - 1]
                if let previous = tables[target].entry(name) {
                    diagnostics.error(keyLocation, "`\(name)` is already set in this table at \(previous.keyLocation)")
                    continue
                }
                if let clash = indexByPath[tables[target].path + [name]] {
                    diagnostics.error(keyLocation, "`\(name)` is already a table (defined at \(tables[clash].location))")
                    continue
                }
                tables[target].add(Entry(key: name, keyLocation: keyLocation, value: value))
            }
        }
    }

    private mutating func defineTable(_ path: [String], at location: SourceLocation, diagnostics: inout DiagnosticList) -> Int {
        if let existing = indexByPath[path] {
            if tables[existing].isImplicit {
                tables[existing].isImplicit = false
                tables[existing].location = location
            } else {
                diagnostics.error(location, "table [\(Self.render(path))] is already defined at \(tables[existing].location)")
                var shadow = Table(path: path, location: location, isImplicit: false)
                shadow.isDuplicate = true
                tables.append(shadow)
                return tables.count - 1
            }
            return existing
        }
        for length in 1..<max(path.count, 1) {
            let prefix = Array(path.prefix(length))
            if let parent = indexByPath[Array(prefix.dropLast())], let entry = tables[parent].entry(prefix[prefix.count - 1]) {
                diagnostics.error(location, "[\(Self.render(path))] extends `\(Self.render(prefix))`, which is a key set at \(entry.keyLocation)")
                break
            }
            _ = implicitTable(prefix, at: location)
        }
        tables.append(Table(path: path, location: location, isImplicit: false))
        indexByPath[path] = tables.count - 1
        return tables.count - 1
    }

    private mutating func implicitTable(_ path: [String], at location: SourceLocation) -> Int {
        if let existing = indexByPath[path] { return existing }
        tables.append(Table(path: path, location: location, isImplicit: true))
        indexByPath[path] = tables.count - 1
        return tables.count - 1
    }

    /// `mailbox.acme-in`, quoting parts that are not bare keys.
    package static func render(_ path: [String]) -> String {
        path.map { part in
            part.unicodeScalars.allSatisfy(ConfigParser.isBareKeyScalar) && !part.isEmpty ? part : "\"\(part)\""
        }.joined(separator: ".")
    }
}
