/// "Did you mean …?": the known name closest to a misspelt one, if any is close enough.
package enum NearestName {
    /// Words operators bring from other mail software, mapped to Carteiro's key.
    static let synonyms: [String: String] = [
        "host": "server", "hostname": "server", "address": "server", "username": "user", "login": "user",
        "pass": "password", "passwd": "password", "secret": "password", "from": "sender", "ssl": "tls",
        "protocol": "provider", "mailbox": "folder", "interval": "poll_interval", "members_of": "members",
    ]

    package static func suggest(_ word: String, among candidates: [String]) -> String? {
        if let synonym = synonyms[word.lowercased()], candidates.contains(synonym) { return synonym }
        let lowered = word.lowercased()
        var best: (name: String, distance: Int)?
        for candidate in candidates {
            let distance = editDistance(lowered, candidate.lowercased())
            if distance < (best?.distance ?? Int.max) { best = (candidate, distance) }
        }
        guard let best else { return nil }
        // Allow about one edit in three characters, and at least one.
        let allowed = max(1, min(3, max(word.count, best.name.count) / 3))
        return best.distance <= allowed ? best.name : nil
    }

    /// Optimal string alignment distance (Levenshtein plus adjacent transpositions).
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a.unicodeScalars), b = Array(b.unicodeScalars)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        if a.count > 256 || b.count > 256 { return max(a.count, b.count) }
        var previous2 = [Int](repeating: 0, count: b.count + 1)
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    current[j] = min(current[j], previous2[j - 2] + 1)
                }
            }
            (previous2, previous, current) = (previous, current, previous2)
        }
        return previous[b.count]
    }

    /// ", did you mean `x`?" or "".
    package static func hint(_ word: String, among candidates: [String], quote: (String) -> String = { "`\($0)`" }) -> String {
        suggest(word, among: candidates).map { "; did you mean \(quote($0))?" } ?? ""
    }
}
