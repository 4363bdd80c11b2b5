import Foundation

/// A request to stop, seen at once by the pass it should interrupt. Set from any thread; read
/// between units of work by the thread doing them. (A flag set by a block queued behind the
/// running pass would be seen only once that pass had finished.)
final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var raised = false

    var isRaised: Bool { lock.withLock { raised } }
    func raise() { lock.withLock { raised = true } }
}
