/// Why a strategy cannot go on with what its peers agreed on.
public enum StrategyError: Error, CustomStringConvertible, Equatable {
    /// Values every worker received in an all-reduce are impossible (NaN, negative counts):
    /// a peer is broken or hostile, and going on would put them into everyone's model.
    case badPeerValues(String)

    public var description: String {
        switch self {
        case let .badPeerValues(what): "the workers' shared values are impossible: \(what)"
        }
    }
}
