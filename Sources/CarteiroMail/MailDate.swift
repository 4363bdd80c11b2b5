/// RFC 5322 dates (§3.3, with the obsolete forms of §4.3) to UTC ISO 8601.
package enum MailDate {
    static let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    static let zones: [String: Int] = [
        "ut": 0, "gmt": 0, "utc": 0, "z": 0, "est": -300, "edt": -240, "cst": -360, "cdt": -300,
        "mst": -420, "mdt": -360, "pst": -480, "pdt": -420, "brt": -180, "bst": 60, "cet": 60, "cest": 120,
    ]

    /// "Wed, 25 Nov 2026 08:59:58 -0300" → seconds since 1970 (UTC); nil when unreadable.
    package static func parse(_ text: String) -> Int64? {
        // Words between spaces and commas, split on the bytes (every separator is ASCII).
        var words = text.lowercased().utf8.split(whereSeparator: { $0 == 32 || $0 == 44 }).map { String(Substring($0)) }
        // Drop a comment such as "(BRT)" and the day of the week.
        words.removeAll { $0.hasPrefix("(") }
        if let first = words.first, first.count >= 3, !first.first!.isNumber { words.removeFirst() }
        guard words.count >= 4 else { return nil }
        var day: Int?, month: Int?, year: Int?
        // "25 Nov 2026" or the American "Nov 25 2026".
        if let d = Int(words[0]), let m = monthIndex(words[1]) { day = d; month = m }
        else if let m = monthIndex(words[0]), let d = Int(words[1]) { day = d; month = m }
        guard let dayValue = day, let monthValue = month else { return nil }
        var rest = Array(words.dropFirst(2))
        // asctime: "Nov 25 08:59:58 2026"
        if rest.count >= 2, rest[0].utf8.contains(UInt8(ascii: ":")), let y = Int(rest[1]) { rest.swapAt(0, 1); year = y } else { year = Int(rest.first ?? "") }
        guard var yearValue = year, rest.count >= 2 else { return nil }
        if yearValue < 50 { yearValue += 2000 } else if yearValue < 1000 { yearValue += 1900 }
        // A year comes from whoever wrote the message: anything outside four digits is not a
        // date (and would overflow the arithmetic below).
        guard Self.years.contains(yearValue) else { return nil }
        let time = rest[1].split(separator: ":").compactMap { Int($0) }
        guard time.count >= 2, (1...31).contains(dayValue), (0...23).contains(time[0]), (0...59).contains(time[1]) else { return nil }
        let seconds = time.count > 2 ? min(max(time[2], 0), 60) : 0
        var offsetMinutes = 0
        if rest.count >= 3 {
            let zone = rest[2]
            if let sign = zone.first, sign == "+" || sign == "-", zone.count == 5, zone.dropFirst().allSatisfy(\.isASCIIDigit), let value = Int(zone.dropFirst()) {
                offsetMinutes = (value / 100 * 60 + value % 100) * (sign == "-" ? -1 : 1)
            } else if let named = zones[zone] {
                offsetMinutes = named
            }
        }
        let days = daysFromCivil(year: yearValue, month: monthValue, day: dayValue)
        return Int64(days) * 86_400 + Int64(time[0] * 3600 + time[1] * 60 + seconds) - Int64(offsetMinutes * 60)
    }

    /// The years a date may name: four digits, as RFC 5322 writes them.
    static let years = 1...9999
    /// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z: `iso8601` writes nothing outside.
    static let earliest: Int64 = -62_135_596_800
    static let latest: Int64 = 253_402_300_799

    static func monthIndex(_ word: String) -> Int? {
        months.firstIndex(of: String(word.prefix(3))).map { $0 + 1 }
    }

    /// Days since 1970-01-01 (Howard Hinnant's algorithm).
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// Seconds since 1970 → "2026-11-25T11:59:58Z".
    package static func iso8601(_ unclamped: Int64) -> String {
        let seconds = min(max(unclamped, earliest), latest)
        let days = Int(seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400)
        let secondsOfDay = Int(seconds - Int64(days) * 86_400)
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(year)-\(two(month))-\(two(day))T\(two(secondsOfDay / 3600)):\(two(secondsOfDay / 60 % 60)):\(two(secondsOfDay % 60))Z"
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}
