import Synchronization

/// A bounded multi-producer, multi-consumer FIFO with async consumers.
///
/// Capacity is counted by each element's `weight` (1 per request, or its item count). An element
/// heavier than the whole capacity is still accepted into an empty queue, so one oversized batch
/// cannot wedge an exporter.
final class BoundedQueue<Element: Sendable>: Sendable {
    private struct State {
        var buffer: [Element?] = []
        var head = 0
        var weights: [Int] = []
        var used = 0
        var closed = false
        var consumers: [CheckedContinuation<Element?, Never>] = []
        var producers: [(weight: Int, continuation: CheckedContinuation<Void, Never>)] = []

        var count: Int { buffer.count - head }

        mutating func popFront() -> (Element, Int) {
            let e = buffer[head]!
            let w = weights[head]
            buffer[head] = nil
            head += 1
            if head > 1024 && head * 2 > buffer.count {
                buffer.removeFirst(head)
                weights.removeFirst(head)
                head = 0
            }
            used -= w
            return (e, w)
        }
    }

    private enum PushOutcome {
        case rejected
        case queued
        case handed(CheckedContinuation<Element?, Never>)
    }

    let capacity: Int
    private let state = Mutex(State())

    init(capacity: Int) { self.capacity = capacity }

    /// Units currently queued.
    var used: Int { state.withLock { $0.used } }

    /// Adds `element` if it fits; `false` when full or closed.
    func tryPush(_ element: Element, weight: Int) -> Bool {
        let outcome: PushOutcome = state.withLock { s in
            guard !s.closed, s.used == 0 || s.used + weight <= capacity else { return .rejected }
            if s.count == 0, !s.consumers.isEmpty { return .handed(s.consumers.removeFirst()) }
            s.buffer.append(element)
            s.weights.append(weight)
            s.used += weight
            return .queued
        }
        switch outcome {
        case .rejected: return false
        case .queued: return true
        case .handed(let consumer):
            consumer.resume(returning: element)
            return true
        }
    }

    /// Adds `element`, waiting for room. Returns `false` if the queue closed first.
    func push(_ element: Element, weight: Int) async -> Bool {
        while true {
            let accepted = tryPush(element, weight: weight)
            if accepted { return true }
            let closed = state.withLock { $0.closed }
            if closed { return false }
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { s in
                    if s.closed || s.used == 0 || s.used + weight <= capacity { return true }
                    s.producers.append((weight, c))
                    return false
                }
                if resumeNow { c.resume() }
            }
        }
    }

    /// The next element, waiting when empty; `nil` once closed and drained.
    func pop() async -> Element? {
        if let (e, wake) = tryPop() {
            wake?.resume()
            return e
        }
        return await withCheckedContinuation { (c: CheckedContinuation<Element?, Never>) in
            let immediate: (Element?, CheckedContinuation<Void, Never>?)? = state.withLock { s in
                if s.count > 0 {
                    let (e, _) = s.popFront()
                    return (e, s.producers.isEmpty ? nil : s.producers.removeFirst().continuation)
                }
                if s.closed { return (nil, nil) }
                s.consumers.append(c)
                return nil
            }
            if let immediate {
                immediate.1?.resume()
                c.resume(returning: immediate.0)
            }
        }
    }

    private func tryPop() -> (Element, CheckedContinuation<Void, Never>?)? {
        state.withLock { s in
            guard s.count > 0 else { return nil }
            let (e, _) = s.popFront()
            return (e, s.producers.isEmpty ? nil : s.producers.removeFirst().continuation)
        }
    }

    /// Stops accepting; waiting consumers get `nil` once the queue is drained.
    func close() {
        let (consumers, producers) = state.withLock { s -> ([CheckedContinuation<Element?, Never>], [CheckedContinuation<Void, Never>]) in
            s.closed = true
            let c = s.count == 0 ? s.consumers : []
            if s.count == 0 { s.consumers = [] }
            let p = s.producers.map(\.continuation)
            s.producers = []
            return (c, p)
        }
        for c in consumers { c.resume(returning: nil) }
        for p in producers { p.resume() }
    }

    /// Removes everything still queued (used when shutdown runs out of time), returning it.
    func drainRemaining() -> [Element] {
        let (items, consumers) = state.withLock { s -> ([Element], [CheckedContinuation<Element?, Never>]) in
            var out: [Element] = []
            while s.count > 0 { out.append(s.popFront().0) }
            let c = s.closed ? s.consumers : []
            if s.closed { s.consumers = [] }
            return (out, c)
        }
        for c in consumers { c.resume(returning: nil) }
        return items
    }
}
