import TensorCore

/// The state a worker without any takes from the worker the coordinator named: parameters, AdamW
/// moments, outer momentum and step. It travels as one vector that the source fills and every
/// other worker leaves zero, summed exactly (fp32) around the ring.
///
/// Layout, for `count` parameters: parameters, m, v, outer velocity (`count` each), then the
/// step as two whole floats (low and high 24 bits), so that no integer is rounded on the way.
public enum StateHandOff {
    /// Values in the message for a model of `count` parameters.
    public static func messageCount(parameters count: Int) -> Int { 4 * count + 2 }

    /// Fills `message` with the source's state; `velocity` nil is zero momentum.
    public static func pack(into message: UnsafeMutableBufferPointer<Float>, parameters: UnsafeBufferPointer<Float>,
                            m: UnsafeBufferPointer<Float>, v: UnsafeBufferPointer<Float>, velocity: [Float]?, step: Int) {
        let count = parameters.count
        precondition(message.count == messageCount(parameters: count) && m.count == count && v.count == count
                     && (velocity?.count ?? count) == count, "[StateHandOff] sizes do not match \(count) parameters")
        for (k, part) in [parameters, m, v].enumerated() {
            _ = UnsafeMutableBufferPointer(rebasing: message[(k * count)..<((k + 1) * count)]).update(fromContentsOf: part)
        }
        let tail = UnsafeMutableBufferPointer(rebasing: message[(3 * count)..<(4 * count)])
        if let velocity { _ = velocity.withUnsafeBufferPointer { tail.update(fromContentsOf: $0) } } else { tail.update(repeating: 0) }
        (message[4 * count], message[4 * count + 1]) = ExactInteger.split(step)
    }

    /// Copies the summed state into a worker's slabs; returns the outer velocity and the step.
    /// Throws when the step did not arrive as a whole number (a broken peer).
    public static func unpack(_ message: UnsafeBufferPointer<Float>, parameters: UnsafeMutableBufferPointer<Float>,
                              m: UnsafeMutableBufferPointer<Float>, v: UnsafeMutableBufferPointer<Float>) throws
        -> (velocity: [Float], step: Int) {
        let count = parameters.count
        precondition(message.count == messageCount(parameters: count), "[StateHandOff] message of \(message.count) values for \(count) parameters")
        let low = message[4 * count], high = message[4 * count + 1]
        guard let step = ExactInteger.join(low, high) else {
            throw StrategyError.badPeerValues("the handed-over step arrived as (\(low), \(high))")
        }
        for (k, slab) in [parameters, m, v].enumerated() {
            _ = slab.update(fromContentsOf: UnsafeBufferPointer(rebasing: message[(k * count)..<((k + 1) * count)]))
        }
        return (Array(message[(3 * count)..<(4 * count)]), step)
    }
}

/// Non-negative integers carried through fp32 sums without rounding: two floats of 24 bits each.
public enum ExactInteger {
    static let half = 1 << 24

    /// `value` as (low 24 bits, the rest); both whole floats a Float holds exactly.
    public static func split(_ value: Int) -> (Float, Float) {
        precondition(value >= 0 && value < half * half, "[ExactInteger] \(value) out of range")
        return (Float(value % half), Float(value / half))
    }

    /// The integer `split` made, or nil when either part is not a whole number in range.
    public static func join(_ low: Float, _ high: Float) -> Int? {
        guard let l = exactInteger(low), let h = exactInteger(high), (0..<half).contains(l), (0..<half).contains(h) else { return nil }
        return h * half + l
    }
}
