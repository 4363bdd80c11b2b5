/// When each mailbox polls next, for one alarm: the scheduler arms a single timer for the
/// earliest entry instead of keeping a timer per mailbox. With 500 mailboxes polled every minute,
/// a timer each meant creating, arming and destroying eight kernel timers a second, and waking
/// libdispatch's timer thread for each; one alarm wakes once for the polls due together.
///
/// Each entry has a slack: it may be taken up to that much before its time (`takeDue`), so that
/// polls a little apart are launched by one wake-up. Times are nanoseconds of a monotonic clock
/// (`DispatchTime.uptimeNanoseconds`). A binary min-heap ordered by time; replaced and removed
/// entries are left in it and skipped when they surface (each name's current entry is the one
/// with its latest sequence number).
struct PollCalendar {
    struct Entry {
        var at: UInt64
        var slack: UInt64
        var sequence: UInt64
        var name: String
    }

    private var heap: [Entry] = []
    private var current: [String: UInt64] = [:]
    private var nextSequence: UInt64 = 0

    var isEmpty: Bool { current.isEmpty }
    var count: Int { current.count }
    func contains(_ name: String) -> Bool { current[name] != nil }

    /// Plans `name` for `at` (replacing any plan it had), takeable from `at - slack` on.
    mutating func set(_ name: String, at: UInt64, slack: UInt64) {
        nextSequence += 1
        current[name] = nextSequence
        push(Entry(at: at, slack: min(slack, at), sequence: nextSequence, name: name))
        // Stale entries pile up only when plans are replaced faster than they come due
        // (reloads, `carteiro poll`): rebuilt when they outnumber the live ones.
        if heap.count > 2 * current.count + 64 { rebuild() }
    }

    mutating func remove(_ name: String) {
        current[name] = nil
        if current.isEmpty { heap.removeAll() }
    }

    mutating func removeAll() {
        current.removeAll()
        heap.removeAll()
    }

    /// The earliest live entry: when the alarm may go off (`at - slack`) and how late it may
    /// be (`slack`). Nil when nothing is planned.
    mutating func earliest() -> (from: UInt64, slack: UInt64)? {
        dropStale()
        guard let top = heap.first else { return nil }
        return (top.at - top.slack, top.slack)
    }

    /// Removes and returns, earliest first, every entry that may be taken at `now`.
    mutating func takeDue(now: UInt64) -> [String] {
        var due: [String] = []
        while true {
            dropStale()
            guard let top = heap.first, top.at - top.slack <= now else { break }
            popTop()
            current[top.name] = nil
            due.append(top.name)
        }
        return due
    }

    private mutating func dropStale() {
        while let top = heap.first, current[top.name] != top.sequence { popTop() }
    }

    private mutating func rebuild() {
        heap = heap.filter { current[$0.name] == $0.sequence }
        var index = heap.count / 2
        while index > 0 {
            index -= 1
            siftDown(index)
        }
    }

    private static func earlier(_ a: Entry, _ b: Entry) -> Bool {
        a.at != b.at ? a.at < b.at : a.sequence < b.sequence
    }

    private mutating func push(_ entry: Entry) {
        heap.append(entry)
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard Self.earlier(heap[child], heap[parent]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func popTop() {
        guard !heap.isEmpty else { return }
        heap.swapAt(0, heap.count - 1)
        heap.removeLast()
        siftDown(0)
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1, right = left + 1
            var smallest = parent
            if left < heap.count, Self.earlier(heap[left], heap[smallest]) { smallest = left }
            if right < heap.count, Self.earlier(heap[right], heap[smallest]) { smallest = right }
            guard smallest != parent else { return }
            heap.swapAt(parent, smallest)
            parent = smallest
        }
    }
}
