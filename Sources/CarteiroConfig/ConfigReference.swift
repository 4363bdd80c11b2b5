/// The documentation of every table and key, from the schema: `check-config --reference`.
package enum ConfigReference {
    package static func render() -> String {
        var out: [String] = []
        for table in ConfigSchema.tables {
            out.append(table.title)
            out.append("  " + table.doc)
            for key in table.keys {
                let scope = switch key.scope {
                case .always: ""
                case .inbound: " (inbound)"
                case .outbound: " (outbound)"
                }
                let value = key.required ? "required" : "default: \(key.defaultDescription ?? "unset")"
                out.append("  \(key.key)\(scope) = \(key.type.expectation); \(value)")
                out.append("      \(key.doc)")
            }
            out.append("")
        }
        return out.joined(separator: "\n")
    }
}
