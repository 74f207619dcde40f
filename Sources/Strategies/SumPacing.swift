/// How long a background sum's frames are spread over (overlapped DiLoCo and streaming): they leave
/// at the pace that takes that long rather than at the link's full rate, which lowers the peak the
/// link sees. A ring goes at its slowest sender's pace, so every worker paces against the time the
/// sum has before it is needed, which timed rounds share (their budget); a worker whose own round
/// was longer (a slow worker's extra step, paid for by a carry) must not pace slower for it.
public enum SumPacing {
    /// The share of the time a sum has that its frames are spread over. The rest is the margin for
    /// the link's delay at every hop and for step-to-step jitter. Before the shared budget set the
    /// time, half a worker's own round was the most that did not make the first workers wait (at
    /// three quarters of it they waited 7% of the time: a slow worker's long round paced the ring).
    public static let share = 0.7
    /// The least share a late worker's sum is spread over: later than this, it goes nearly at once.
    public static let latestShare = 0.1

    /// Seconds to spread a sum's frames over when it has `roundSeconds` before it is needed and this
    /// worker starts it `lateSeconds` behind the schedule the workers share (a negative carry).
    public static func sendSeconds(roundSeconds: Double, lateSeconds: Double) -> Double {
        max(share * roundSeconds - max(0, lateSeconds), latestShare * roundSeconds)
    }
}
