/// Why a strategy cannot go on with what its peers agreed on.
public enum StrategyError: Error, CustomStringConvertible, Equatable {
    /// Values every worker received in an all-reduce are impossible (NaN, negative counts):
    /// a peer is broken or hostile, and going on would put them into everyone's model.
    case badPeerValues(String)
    /// This worker's contributions were rejected too often: it leaves the run.
    case excluded(reason: String)

    public var description: String {
        switch self {
        case let .badPeerValues(what): "the workers' shared values are impossible: \(what)"
        case let .excluded(reason): reason
        }
    }
}
