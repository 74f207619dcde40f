import Foundation

/// The DiLoCo scaling-law paper's fits (Charles et al., arXiv 2503.09799; 35M–2.4B parameters,
/// H = 30, D = 20N tokens, each size's tuned learning rate and batch).
///
/// Gap: the separate power-law fits L(N) = A·N^α of the evaluation loss for DP and for each M
/// (Table 7).
/// The gap is L_M(N)/L_DP(N) − 1 = (A_M/A_DP)·N^(α_M − α_DP) − 1: since α_M < α_DP, the gap shrinks
/// as N grows. Below 35M it is an extrapolation, a guide to what the trend alone predicts and no
/// more: the fits know nothing of a run that sees far fewer than 20 tokens per parameter.
public enum DiLoCoScalingLaws {
    /// (A, α) of Table 7's fits.
    struct Fit {
        var a: Double
        var alpha: Double
    }

    static let dataParallel = Fit(a: 18.129, alpha: -0.0953)
    /// Table 7's fit for each M it has.
    static let diloco: [Int: Fit] = [
        1: Fit(a: 18.363, alpha: -0.0961),
        2: Fit(a: 18.768, alpha: -0.0969),
        4: Fit(a: 19.762, alpha: -0.0992),
        8: Fit(a: 21.051, alpha: -0.1018),
    ]

    /// The predicted gap in percent for `workers` replicas at `parameters` parameters; nil for an
    /// M the paper did not fit.
    public static func gap(parameters: Double, workers: Int) -> Double? {
        guard let fit = diloco[workers], parameters > 0 else { return nil }
        return (fit.a / dataParallel.a * pow(parameters, fit.alpha - dataParallel.alpha) - 1) * 100
    }

    /// How DiLoCo's best inner learning rate grows with M (Table 10's joint fit γ ∝ N^α·M^β): M^0.29.
    public static let learningRateWorkerExponent = 0.2929
    /// How DiLoCo's best global batch grows with M (Table 10): M^0.34.
    public static let batchWorkerExponent = 0.3399

    /// DiLoCo's inner learning rate for `workers` replicas, from the best one of one replica (DDP's).
    public static func innerLearningRate(_ single: Float, workers: Int) -> Float {
        single * Float(pow(Double(max(1, workers)), learningRateWorkerExponent))
    }

    /// DiLoCo's global batch (sequences) for `workers` replicas from DDP's best `batch`: the fit's
    /// growth rounded to the nearest power of two times `batch` (in log scale), and at least one
    /// sequence per worker.
    public static func globalBatch(_ batch: Int, workers: Int) -> Int {
        let growth = pow(Double(max(1, workers)), batchWorkerExponent)
        let grown = batch << Int(log2(growth).rounded())
        return max(grown, workers)
    }
}
