/// Durations as the configuration writes them: "30s", "5m", "1h30m", "2d", "500ms".
package enum ConfigDuration {
    static let units: [(suffix: String, milliseconds: Int64)] = [
        ("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000), ("w", 604_800_000),
    ]

    /// Parses a duration; nil if the text is not one.
    package static func parse(_ text: String) -> Duration? {
        let scalars = Array(text.lowercased().unicodeScalars)
        guard !scalars.isEmpty else { return nil }
        if scalars == ["0"] { return .zero }
        var total: Int64 = 0
        var i = 0
        while i < scalars.count {
            var number: Int64 = 0
            let start = i
            while i < scalars.count, let digit = Int64(String(scalars[i])), scalars[i].isASCII {
                let (m, o1) = number.multipliedReportingOverflow(by: 10)
                let (a, o2) = m.addingReportingOverflow(digit)
                if o1 || o2 { return nil }
                number = a
                i += 1
            }
            if i == start { return nil }
            var unit = ""
            while i < scalars.count, scalars[i].properties.isAlphabetic {
                unit.unicodeScalars.append(scalars[i])
                i += 1
            }
            guard let factor = units.first(where: { $0.suffix == unit })?.milliseconds else { return nil }
            let (product, o3) = number.multipliedReportingOverflow(by: factor)
            let (sum, o4) = total.addingReportingOverflow(product)
            if o3 || o4 || sum > 100 * 365 * 86_400_000 { return nil }
            total = sum
        }
        return .milliseconds(total)
    }

    /// "1h30m", "45s", "500ms": the shortest way to write it back.
    package static func format(_ duration: Duration) -> String {
        var ms = duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        if ms == 0 { return "0s" }
        var parts = ""
        for (suffix, factor) in units.reversed() where suffix != "w" {
            if ms >= factor {
                parts += "\(ms / factor)\(suffix)"
                ms %= factor
            }
        }
        return parts
    }
}

/// Sizes as the configuration writes them: "512KB", "25MB", "1GB" (binary multiples), or bytes.
package enum ConfigSize {
    static let units: [(suffix: String, factor: Int)] = [
        ("", 1), ("b", 1), ("k", 1 << 10), ("kb", 1 << 10), ("kib", 1 << 10),
        ("m", 1 << 20), ("mb", 1 << 20), ("mib", 1 << 20),
        ("g", 1 << 30), ("gb", 1 << 30), ("gib", 1 << 30),
    ]

    package static func parse(_ text: String) -> Int? {
        guard case .bytes(let bytes) = read(text) else { return nil }
        return bytes
    }

    /// Digits and a known unit, but more bytes than an Int holds.
    static func isTooLarge(_ text: String) -> Bool {
        if case .tooLarge = read(text) { return true }
        return false
    }

    enum Reading { case bytes(Int), tooLarge, invalid }

    static func read(_ text: String) -> Reading {
        let trimmed = text.lowercased().filter { $0 != " " }
        let digits = trimmed.prefix { $0.isASCII && $0.isNumber }
        let unit = trimmed.dropFirst(digits.count)
        guard !digits.isEmpty, let factor = units.first(where: { $0.suffix == unit })?.factor else { return .invalid }
        guard let number = Int(digits) else { return .tooLarge }
        let (product, overflow) = number.multipliedReportingOverflow(by: factor)
        return overflow ? .tooLarge : .bytes(product)
    }

    package static func format(_ bytes: Int) -> String {
        for (suffix, factor) in [("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)] where bytes >= factor && bytes % factor == 0 {
            return "\(bytes / factor)\(suffix)"
        }
        return "\(bytes)B"
    }
}
