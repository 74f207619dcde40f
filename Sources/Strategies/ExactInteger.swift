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
        guard let l = whole(low), let h = whole(high), (0..<half).contains(l), (0..<half).contains(h) else { return nil }
        return h * half + l
    }

    /// `value` as an Int when it is a finite whole number of a size a Float holds exactly.
    public static func whole(_ value: Float) -> Int? {
        guard value.isFinite, value == value.rounded(), abs(value) <= 16_777_216 else { return nil }
        return Int(value)
    }
}
