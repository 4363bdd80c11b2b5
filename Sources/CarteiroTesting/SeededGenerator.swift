import Foundation

/// Randomness a failing test can repeat: SplitMix64 from a seed that the test prints; set
/// `CARTEIRO_TEST_SEED` to run it again with the same draws.
package struct SeededGenerator: RandomNumberGenerator {
    package let seed: UInt64
    private var state: UInt64

    package init(seed: UInt64? = nil) {
        let chosen = seed ?? ProcessInfo.processInfo.environment["CARTEIRO_TEST_SEED"].flatMap(UInt64.init) ?? UInt64.random(in: 1...UInt64.max)
        self.seed = chosen
        state = chosen
    }

    package mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
