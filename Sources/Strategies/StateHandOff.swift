import TensorCore

/// The state a worker without any takes from the worker the coordinator named: parameters, AdamW
/// moments, outer momentum, step, and the time rounds' last total and budget (so that every
/// worker weighs and times the next round alike). It travels as one vector that the source fills
/// and every other worker leaves zero, summed exactly (fp32) around the ring.
///
/// Layout, for `count` parameters: parameters, m, v, outer velocity (`count` each), then the
/// scalars as whole floats (`ExactInteger`), so that nothing is rounded on the way.
public enum StateHandOff {
    /// Whole floats after the four vectors: step (2), last total + 1 (2), budget present (1),
    /// budget's bits (4 × 16).
    static let scalarCount = 9

    /// Values in the message for a model of `count` parameters.
    public static func messageCount(parameters count: Int) -> Int { 4 * count + scalarCount }

    /// What a receiver takes besides its slabs.
    public struct Scalars: Sendable, Equatable {
        public var step: Int
        public var outerVelocity: [Float]
        public var previousTotalTokens: Int?
        public var roundBudgetSeconds: Double?

        public init(step: Int, outerVelocity: [Float], previousTotalTokens: Int?, roundBudgetSeconds: Double?) {
            (self.step, self.outerVelocity, self.previousTotalTokens, self.roundBudgetSeconds)
                = (step, outerVelocity, previousTotalTokens, roundBudgetSeconds)
        }
    }

    /// Fills `message` with the source's state; `velocity` nil is zero momentum.
    public static func pack(into message: UnsafeMutableBufferPointer<Float>, parameters: UnsafeBufferPointer<Float>,
                            m: UnsafeBufferPointer<Float>, v: UnsafeBufferPointer<Float>, step: Int, state: StrategyState?) {
        let count = parameters.count
        let velocity = state?.outerVelocity
        precondition(message.count == messageCount(parameters: count) && m.count == count && v.count == count
                     && (velocity?.count ?? count) == count, "[StateHandOff] sizes do not match \(count) parameters")
        for (k, part) in [parameters, m, v].enumerated() {
            _ = UnsafeMutableBufferPointer(rebasing: message[(k * count)..<((k + 1) * count)]).update(fromContentsOf: part)
        }
        let tail = UnsafeMutableBufferPointer(rebasing: message[(3 * count)..<(4 * count)])
        if let velocity { _ = velocity.withUnsafeBufferPointer { tail.update(fromContentsOf: $0) } } else { tail.update(repeating: 0) }
        var scalars = [Float]()
        func add(_ value: Int) { let (low, high) = ExactInteger.split(value); scalars += [low, high] }
        add(step)
        add(state?.previousTotalTokens.map { $0 + 1 } ?? 0)
        let bits = state?.roundBudgetSeconds?.bitPattern
        scalars.append(bits == nil ? 0 : 1)
        for k in 0..<4 { scalars.append(Float(((bits ?? 0) >> (16 * k)) & 0xFFFF)) }
        _ = UnsafeMutableBufferPointer(rebasing: message[(4 * count)...]).update(fromContentsOf: scalars)
    }

    /// Copies the summed state into a worker's slabs; returns the rest. Throws when a scalar did
    /// not arrive as a whole number in range (a broken peer).
    public static func unpack(_ message: UnsafeBufferPointer<Float>, parameters: UnsafeMutableBufferPointer<Float>,
                              m: UnsafeMutableBufferPointer<Float>, v: UnsafeMutableBufferPointer<Float>) throws -> Scalars {
        let count = parameters.count
        precondition(message.count == messageCount(parameters: count), "[StateHandOff] message of \(message.count) values for \(count) parameters")
        let s = Array(message[(4 * count)...])
        let chunks = s[5..<9].map { ExactInteger.whole($0) }
        guard let step = ExactInteger.join(s[0], s[1]), let total = ExactInteger.join(s[2], s[3]), let present = ExactInteger.whole(s[4]),
              (0...1).contains(present), chunks.allSatisfy({ $0.map { (0..<(1 << 16)).contains($0) } == true })
        else { throw StrategyError.badPeerValues("the handed-over step, total and budget arrived as \(s)") }
        let bits = chunks.enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element!) << (16 * $1.offset) }
        let budget = present == 1 ? Double(bitPattern: bits) : nil
        if let budget, !(budget.isFinite && budget > 0) { throw StrategyError.badPeerValues("the handed-over round budget is \(budget) s") }
        for (k, slab) in [parameters, m, v].enumerated() {
            _ = slab.update(fromContentsOf: UnsafeBufferPointer(rebasing: message[(k * count)..<((k + 1) * count)]))
        }
        return Scalars(step: step, outerVelocity: Array(message[(3 * count)..<(4 * count)]),
                       previousTotalTokens: total == 0 ? nil : total - 1, roundBudgetSeconds: budget)
    }
}
