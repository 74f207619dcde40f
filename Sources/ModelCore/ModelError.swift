/// Errors from building or running a model on input the caller did not control.
public enum ModelError: Error, Equatable, CustomStringConvertible {
    /// A configuration field has an invalid value.
    case invalidConfig(field: String, reason: String)
    /// A token id outside `0..<vocabSize` was fed to the model.
    case tokenOutOfRange(position: Int, token: Int32, vocabSize: Int)
    /// A batch larger than the buffers the model was built for.
    case batchTooLarge(batch: Int, length: Int, maxBatch: Int, maxLength: Int)
    /// `backward` called without a preceding `forward` with targets.
    case backwardWithoutLoss

    public var description: String {
        switch self {
        case let .invalidConfig(field, reason):
            return "invalid model config: \(field) \(reason)"
        case let .tokenOutOfRange(position, token, vocabSize):
            return "token \(token) at position \(position) is outside the vocabulary (0..<\(vocabSize)); was the data tokenized for another model?"
        case let .batchTooLarge(batch, length, maxBatch, maxLength):
            return "batch \(batch)x\(length) exceeds the model's buffers \(maxBatch)x\(maxLength)"
        case .backwardWithoutLoss:
            return "backward() needs a forward pass with targets first"
        }
    }
}
