/// A regular expression that cannot be made to take exponential time: compiled to a Thompson
/// NFA and run as a Pike VM over the text's Unicode scalars, so a match costs at most
/// (text length × program size) steps whatever the pattern and the text. Foundation's and
/// Swift's engines backtrack; a hostile header against `(a+)+$` would stall a poll.
///
/// The syntax, a documented subset of POSIX ERE and Perl:
/// - literals; `.` (any scalar); `[abc]`, `[a-z]`, `[^…]`, with `\d \w \s` inside;
/// - `\d \D \w \W \s \S`, `\t \n \r`, and `\` before any punctuation takes it literally
///   (other escapes of letters and digits, such as `\b` or `\1`, are syntax errors);
/// - `^` and `$` (the start and the end of the text);
/// - groups `( … )` (also written `(?: … )`), alternation `|`;
/// - `*`, `+`, `?`, `{n}`, `{n,}`, `{n,m}` (n, m at most 1,000).
///
/// A match is searched anywhere in the text unless anchored. `caseInsensitive` folds ASCII and
/// Unicode letters alike (by lowercasing both sides). Patterns are at most 1,000 scalars and
/// compile to at most 20,000 instructions; beyond that, or with a syntax error, `compile`
/// throws with the offending position.
package struct SafeRegex: Sendable {
    package struct SyntaxError: Error, Equatable, CustomStringConvertible {
        /// The position in the pattern, counted in characters from 0.
        package var offset: Int
        package var reason: String
        package var description: String { "\(reason) (at character \(offset + 1) of the pattern)" }
    }

    enum Instruction: Sendable {
        case scalar(Unicode.Scalar)
        case any
        case set(CharacterSet, negated: Bool)
        case split(Int, Int)
        case jump(Int)
        case start
        case end
        case match
    }

    /// A set of scalars, as ranges and named classes.
    struct CharacterSet: Sendable {
        var ranges: [ClosedRange<UInt32>] = []
        var digits = false, word = false, space = false
        var notDigits = false, notWord = false, notSpace = false

        func contains(_ scalar: Unicode.Scalar) -> Bool {
            let value = scalar.value
            if ranges.contains(where: { $0.contains(value) }) { return true }
            if digits && SafeRegex.isDigit(scalar) { return true }
            if word && SafeRegex.isWord(scalar) { return true }
            if space && SafeRegex.isSpace(scalar) { return true }
            if notDigits && !SafeRegex.isDigit(scalar) { return true }
            if notWord && !SafeRegex.isWord(scalar) { return true }
            if notSpace && !SafeRegex.isSpace(scalar) { return true }
            return false
        }
    }

    let program: [Instruction]
    let leading: Leading
    package let pattern: String
    package let caseInsensitive: Bool

    static let maximumPatternLength = 1_000
    static let maximumProgram = 20_000
    static let maximumRepeat = 1_000

    package init(_ pattern: String, caseInsensitive: Bool = false) throws(SyntaxError) {
        let scalars = Array(pattern.unicodeScalars)
        guard scalars.count <= Self.maximumPatternLength else {
            throw SyntaxError(offset: Self.maximumPatternLength, reason: "the pattern is longer than \(Self.maximumPatternLength) characters")
        }
        var parser = Parser(scalars: scalars, caseInsensitive: caseInsensitive)
        let tree = try parser.parseAlternation()
        guard parser.index == scalars.count else { throw SyntaxError(offset: parser.index, reason: "unmatched `)`") }
        var compiler = Compiler()
        try compiler.emit(tree)
        compiler.program.append(.match)
        guard compiler.program.count <= Self.maximumProgram else {
            throw SyntaxError(offset: 0, reason: "the pattern is too large once its repetitions are counted")
        }
        program = compiler.program
        leading = Leading(compiler.program)
        self.pattern = pattern
        self.caseInsensitive = caseInsensitive
    }

    /// Whether the pattern matches somewhere in `text`.
    package func matches(_ text: String) -> Bool {
        var unlimited = Int.max
        return matches(text, budget: &unlimited) ?? false
    }

    /// Whether the pattern matches somewhere in `text`, spending at most `budget` steps (one
    /// step: one thread moved over one scalar): nil when the budget ran out first. What was
    /// spent is taken from `budget`, so that one budget can bound many matches.
    package func matches(_ text: String, budget: inout Int) -> Bool? {
        matches(scalars: Array((caseInsensitive ? text.lowercased() : text).unicodeScalars), budget: &budget)
    }

    /// The same over scalars already lowered when `caseInsensitive` (a text tested by many
    /// patterns is lowered and split once).
    package func matches(scalars: [Unicode.Scalar], budget: inout Int) -> Bool? {
        var current: [Int] = []
        var next: [Int] = []
        current.reserveCapacity(16)
        next.reserveCapacity(16)
        var seen = [Int](repeating: -1, count: program.count)
        var stack: [Int] = []
        stack.reserveCapacity(16)
        var spent = 0
        // Adds `pc` and everything reachable from it without reading a scalar.
        func add(_ pc: Int, at position: Int, to list: inout [Int], generation: Int) -> Bool {
            stack.removeAll(keepingCapacity: true)
            stack.append(pc)
            while let pc = stack.popLast() {
                spent += 1
                guard seen[pc] != generation else { continue }
                seen[pc] = generation
                switch program[pc] {
                case .match: return true
                case .jump(let target): stack.append(target)
                case .split(let first, let second):
                    stack.append(second)
                    stack.append(first)
                case .start: if position == 0 { stack.append(pc + 1) }
                case .end: if position == scalars.count { stack.append(pc + 1) }
                default: list.append(pc)
                }
            }
            return false
        }
        var generation = 0
        var position = 0
        while position <= scalars.count {
            if current.isEmpty && position > 0 && position < scalars.count {
                // No thread alive: a match can only begin where a first instruction takes the
                // scalar (or nowhere past the start, for a pattern anchored there).
                if leading.anchored { return false }
                while position < scalars.count, !leading.accepts(scalars[position]) {
                    position += 1
                    budget -= 1
                }
                if budget < 0 { return nil }
            }
            // A new thread at every position: the search is unanchored.
            if add(0, at: position, to: &current, generation: generation) { return true }
            guard position < scalars.count else { break }
            // Every thread alive costs a step, whether it moves on or dies, and so does every
            // instruction followed to find the threads.
            budget -= current.count + spent
            spent = 0
            if budget < 0 { return nil }
            let scalar = scalars[position]
            generation += 1
            next.removeAll(keepingCapacity: true)
            for pc in current {
                let taken: Bool = switch program[pc] {
                case .scalar(let expected): scalar == expected
                case .any: true
                case .set(let set, let negated): set.contains(scalar) != negated
                default: false
                }
                if taken, add(pc + 1, at: position + 1, to: &next, generation: generation) { return true }
            }
            swap(&current, &next)
            position += 1
        }
        return false
    }

    /// What a match can begin with away from the text's start and end: the instructions that
    /// take a scalar first. `anchored`: none (every branch begins with `^`).
    struct Leading: Sendable {
        var instructions: [Instruction] = []
        /// A branch matches the empty text or reaches `$` first: every position must be tried.
        var everywhere = false
        var anchored: Bool { instructions.isEmpty && !everywhere }

        func accepts(_ scalar: Unicode.Scalar) -> Bool {
            if everywhere { return true }
            for instruction in instructions {
                switch instruction {
                case .scalar(let expected): if scalar == expected { return true }
                case .any: return true
                case .set(let set, let negated): if set.contains(scalar) != negated { return true }
                default: continue
                }
            }
            return false
        }

        init(_ program: [Instruction]) {
            var seen = Set<Int>()
            var stack = [0]
            while let pc = stack.popLast() {
                guard pc < program.count, seen.insert(pc).inserted else { continue }
                switch program[pc] {
                case .match, .end: everywhere = true
                case .jump(let target): stack.append(target)
                case .split(let first, let second): stack += [first, second]
                case .start: continue
                default: instructions.append(program[pc])
                }
            }
        }
    }

    static func isDigit(_ s: Unicode.Scalar) -> Bool { s.value >= 48 && s.value <= 57 }
    static func isWord(_ s: Unicode.Scalar) -> Bool { s.properties.isAlphabetic || isDigit(s) || s == "_" }
    static func isSpace(_ s: Unicode.Scalar) -> Bool { s.properties.isWhitespace }

    // MARK: - Parsing

    indirect enum Node {
        case empty
        case atom(Instruction)
        case sequence([Node])
        case alternation([Node])
        case repeated(Node, minimum: Int, maximum: Int?)
    }

    struct Parser {
        let scalars: [Unicode.Scalar]
        /// Literals are lowered (the text is lowered too); escapes are read before, so that
        /// `\D` stays "not a digit".
        var caseInsensitive = false
        var index = 0
        var depth = 0

        func fold(_ scalar: Unicode.Scalar) -> Unicode.Scalar {
            guard caseInsensitive else { return scalar }
            let lowered = scalar.properties.lowercaseMapping.unicodeScalars
            return lowered.count == 1 ? lowered.first ?? scalar : scalar
        }

        /// The scalar an escape stands for, or an error for the escapes of other engines
        /// (`\b`, `\1`, `\A` …), which would otherwise silently match a letter.
        func escapedLiteral(_ escaped: Unicode.Scalar, at offset: Int) throws(SyntaxError) -> Unicode.Scalar {
            switch escaped {
            case "t": return "\t"
            case "n": return "\n"
            case "r": return "\r"
            default:
                if escaped.isASCII, escaped.properties.isAlphabetic || ("0"..."9").contains(escaped) {
                    throw SyntaxError(offset: offset, reason: "`\\\(escaped)` is not supported (no word boundaries, back-references or other engines' escapes; \\d \\w \\s \\D \\W \\S \\t \\n \\r are)")
                }
                return escaped
            }
        }

        mutating func parseAlternation() throws(SyntaxError) -> Node {
            var branches = [try parseSequence()]
            while index < scalars.count, scalars[index] == "|" {
                index += 1
                branches.append(try parseSequence())
            }
            return branches.count == 1 ? branches[0] : .alternation(branches)
        }

        mutating func parseSequence() throws(SyntaxError) -> Node {
            var items: [Node] = []
            while index < scalars.count, scalars[index] != "|", scalars[index] != ")" {
                var atom = try parseAtom()
                atom = try parseQuantifiers(atom)
                items.append(atom)
            }
            return items.isEmpty ? .empty : items.count == 1 ? items[0] : .sequence(items)
        }

        mutating func parseQuantifiers(_ node: Node) throws(SyntaxError) -> Node {
            var node = node
            while index < scalars.count {
                let at = index
                switch scalars[index] {
                case "*": index += 1; node = .repeated(node, minimum: 0, maximum: nil)
                case "+": index += 1; node = .repeated(node, minimum: 1, maximum: nil)
                case "?": index += 1; node = .repeated(node, minimum: 0, maximum: 1)
                case "{":
                    guard let (minimum, maximum) = try parseBraces() else { return node }
                    node = .repeated(node, minimum: minimum, maximum: maximum)
                default: return node
                }
                if case .atom(.start) = node { throw SyntaxError(offset: at, reason: "nothing to repeat") }
            }
            return node
        }

        /// `{n}`, `{n,}`, `{n,m}`; nil (and nothing read) when the brace is a literal.
        mutating func parseBraces() throws(SyntaxError) -> (Int, Int?)? {
            let start = index
            var cursor = index + 1
            func number() -> Int? {
                var value: Int?
                while cursor < scalars.count, SafeRegex.isDigit(scalars[cursor]), (value ?? 0) <= SafeRegex.maximumRepeat {
                    value = (value ?? 0) * 10 + Int(scalars[cursor].value - 48)
                    cursor += 1
                }
                return value
            }
            guard let minimum = number() else { return nil }
            var maximum: Int? = minimum
            if cursor < scalars.count, scalars[cursor] == "," {
                cursor += 1
                maximum = number()
            }
            guard cursor < scalars.count, scalars[cursor] == "}" else { return nil }
            guard minimum <= SafeRegex.maximumRepeat, (maximum ?? 0) <= SafeRegex.maximumRepeat else {
                throw SyntaxError(offset: start, reason: "a repetition above \(SafeRegex.maximumRepeat)")
            }
            if let maximum, maximum < minimum { throw SyntaxError(offset: start, reason: "{\(minimum),\(maximum)}: the maximum is below the minimum") }
            index = cursor + 1
            return (minimum, maximum)
        }

        mutating func parseAtom() throws(SyntaxError) -> Node {
            let at = index
            let scalar = scalars[index]
            index += 1
            switch scalar {
            case "(":
                depth += 1
                guard depth <= 100 else { throw SyntaxError(offset: at, reason: "groups nested more than 100 deep") }
                if index + 1 < scalars.count, scalars[index] == "?", scalars[index + 1] == ":" { index += 2 }
                let inner = try parseAlternation()
                guard index < scalars.count, scalars[index] == ")" else { throw SyntaxError(offset: at, reason: "unclosed `(`") }
                index += 1
                depth -= 1
                return inner
            case "*", "+", "?": throw SyntaxError(offset: at, reason: "`\(scalar)` with nothing to repeat")
            case ".": return .atom(.any)
            case "^": return .atom(.start)
            case "$": return .atom(.end)
            case "[": return .atom(try parseClass(openedAt: at))
            case "\\":
                guard index < scalars.count else { throw SyntaxError(offset: at, reason: "`\\` at the end of the pattern") }
                let escaped = scalars[index]
                index += 1
                if let set = Self.named(escaped) { return .atom(.set(set, negated: false)) }
                return .atom(.scalar(fold(try escapedLiteral(escaped, at: at))))
            default: return .atom(.scalar(fold(scalar)))
            }
        }

        static func named(_ scalar: Unicode.Scalar) -> CharacterSet? {
            var set = CharacterSet()
            switch scalar {
            case "d": set.digits = true
            case "w": set.word = true
            case "s": set.space = true
            case "D": set.notDigits = true
            case "W": set.notWord = true
            case "S": set.notSpace = true
            default: return nil
            }
            return set
        }

        mutating func parseClass(openedAt: Int) throws(SyntaxError) -> Instruction {
            var set = CharacterSet()
            var negated = false
            if index < scalars.count, scalars[index] == "^" { negated = true; index += 1 }
            var first = true
            while true {
                guard index < scalars.count else { throw SyntaxError(offset: openedAt, reason: "unclosed `[`") }
                var scalar = scalars[index]
                if scalar == "]" && !first { index += 1; break }
                first = false
                index += 1
                if scalar == "\\" {
                    guard index < scalars.count else { throw SyntaxError(offset: openedAt, reason: "unclosed `[`") }
                    let escaped = scalars[index]
                    index += 1
                    if let named = Self.named(escaped) {
                        set.digits = set.digits || named.digits; set.word = set.word || named.word; set.space = set.space || named.space
                        set.notDigits = set.notDigits || named.notDigits; set.notWord = set.notWord || named.notWord; set.notSpace = set.notSpace || named.notSpace
                        continue
                    }
                    scalar = try escapedLiteral(escaped, at: index - 2)
                }
                if index + 1 < scalars.count, scalars[index] == "-", scalars[index + 1] != "]" {
                    var upper = scalars[index + 1]
                    index += 2
                    if upper == "\\", index < scalars.count {
                        upper = try escapedLiteral(scalars[index], at: index - 1)
                        index += 1
                    }
                    guard scalar.value <= upper.value else { throw SyntaxError(offset: index - 1, reason: "a range that runs backwards") }
                    set.ranges.append(scalar.value...upper.value)
                    // The text is lowered: [A-Z] must also hold a-z.
                    let (low, high) = (fold(scalar), fold(upper))
                    if caseInsensitive, low.value <= high.value, (low, high) != (scalar, upper) { set.ranges.append(low.value...high.value) }
                } else {
                    set.ranges.append(fold(scalar).value...fold(scalar).value)
                }
            }
            return .set(set, negated: negated)
        }
    }

    // MARK: - Compiling

    struct Compiler {
        var program: [Instruction] = []

        mutating func emit(_ node: Node) throws(SyntaxError) {
            guard program.count <= SafeRegex.maximumProgram else {
                throw SyntaxError(offset: 0, reason: "the pattern is too large once its repetitions are counted")
            }
            switch node {
            case .empty: break
            case .atom(let instruction): program.append(instruction)
            case .sequence(let items): for item in items { try emit(item) }
            case .alternation(let branches):
                var jumps: [Int] = []
                for (offset, branch) in branches.enumerated() {
                    if offset < branches.count - 1 {
                        let split = program.count
                        program.append(.split(split + 1, 0))
                        try emit(branch)
                        jumps.append(program.count)
                        program.append(.jump(0))
                        program[split] = .split(split + 1, program.count)
                    } else {
                        try emit(branch)
                    }
                }
                for jump in jumps { program[jump] = .jump(program.count) }
            case .repeated(let inner, let minimum, let maximum):
                for _ in 0..<minimum { try emit(inner) }
                if let maximum {
                    // Each optional copy may be skipped to the end.
                    var splits: [Int] = []
                    for _ in minimum..<maximum {
                        splits.append(program.count)
                        program.append(.split(program.count + 1, 0))
                        try emit(inner)
                    }
                    for split in splits { program[split] = .split(split + 1, program.count) }
                } else {
                    let loop = program.count
                    program.append(.split(loop + 1, 0))
                    try emit(inner)
                    program.append(.jump(loop))
                    program[loop] = .split(loop + 1, program.count)
                }
            }
        }
    }
}
