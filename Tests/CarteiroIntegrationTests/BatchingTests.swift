import Testing
@testable import CarteiroDaemon

/// How a poll splits its messages into batches: small first, doubling up to 200, never over
/// 16 MB unless one message alone is larger; order kept, nothing dropped.
struct BatchingTests {
    @Test func batchesGrowAndRespectTheByteBound() {
        let sizes = InboundIngest.batches(Array(1...1000), size: { _ in 1 }).map(\.count)
        #expect(sizes == [25, 50, 100, 200, 200, 200, 200, 25])
        #expect(InboundIngest.batches(Array(1...1000), size: { _ in 1 }).flatMap { $0 } == Array(1...1000))

        let large = InboundIngest.batches([10, 10, 3, 3, 20, 1], size: { $0 << 20 })
        #expect(large == [[10], [10, 3, 3], [20], [1]])
        #expect(InboundIngest.batches([Int](), size: { $0 }).isEmpty)
    }
}
