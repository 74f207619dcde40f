/// How long a background sum's frames are spread over (overlapped DiLoCo and streaming): they leave
/// at the pace that takes that long rather than at the link's full rate, which lowers the peak the
/// link sees. A ring goes at its slowest sender's pace, so every worker paces against the time the
/// sum has before it is needed, which timed rounds share (their budget); a worker whose own round
/// was longer (a slow worker's extra step, paid for by a carry) must not pace slower for it.
///
/// A sum that must land by the next round's end has a round less the ring's latency and the spread
/// of the workers' round ends (a slow worker ends up to one of its steps early); spread over more of
/// it, the first workers wait. A sum that has two rounds to land (`overlapRounds` 2) follows the one
/// before it on the ring, spread over most of a round, and the second round absorbs a late worker:
/// no worker waits for a sum and none sends faster for being late.
public enum SumPacing {
    /// The share of the time a sum has that its frames are spread over when it lands a round later.
    /// The rest is the margin for the link's delay at every hop and for step-to-step jitter. Before the
    /// shared budget set the time, half a worker's own round was the most that did not make the first
    /// workers wait (at three quarters of it they waited 7% of the time: a slow worker's long round
    /// paced the ring).
    public static let share = 0.7
    /// The share of a round a sum is spread over when it lands two rounds later. Sums follow each other
    /// on the ring, so one must leave it within about a round: the rest is the hops' delay.
    public static let chainedShare = 0.9
    /// The least share a late worker's sum is spread over: later than this, it goes nearly at once.
    public static let latestShare = 0.1

    /// The pace (bytes per second) of a run's last sum, which nothing waits behind but the run's end: the
    /// busiest second this worker's link has seen so far, where that is faster than the rounds' pacing
    /// `paced`. It then ends sooner without setting a new peak. (Streaming with two rounds to land, session 21:
    /// the last round took 1.5–2 s, most of it this sum spread over 0.9 of a round.)
    public static func lastPace(paced: Double, busiestSecond: Double) -> Double { max(paced, busiestSecond) }

    /// Seconds to spread a sum's frames over when rounds last `roundSeconds`, this worker starts it
    /// `lateSeconds` behind the schedule the workers share (a negative carry), and it lands
    /// `roundsToLand` rounds later.
    public static func sendSeconds(roundSeconds: Double, lateSeconds: Double, roundsToLand: Int = 1) -> Double {
        if roundsToLand >= 2 { return chainedShare * roundSeconds }
        return max(share * roundSeconds - max(0, lateSeconds), latestShare * roundSeconds)
    }
}
