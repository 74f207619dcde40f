import NIOCore
import Transport
import Wire

extension Ring {
    /// Joins a ring of `peers` (host and port of every rank, in rank order) as `rank`: dials the
    /// next rank and accepts the previous one on `listener`, both with the handshake of `options`,
    /// whose `local.ringEpoch` names the ring: links of other rings are not taken in. Failures
    /// are `RingFailure`s without a round. With `names` (every rank's worker name), the ring takes
    /// in only those workers at their places: another admitted worker that dials is turned away, and
    /// a next rank that answers under another name is refused.
    public static func form(rank: Int, peers: [(host: String, port: Int)], names: [String]? = nil, listener: PeerListener,
                            options: PeerLink.Options, group: any EventLoopGroup, runID: UInt64,
                            patience: TimeAmount = .seconds(60)) async throws -> Ring {
        let size = peers.count
        precondition((0..<size).contains(rank), "[Ring.form] rank \(rank) of \(size)")
        precondition(names.map { $0.count == size } ?? true, "[Ring.form] \(names?.count ?? 0) names for \(size) peers")
        guard size > 1 else { return Ring(rank: rank, size: 1, next: nil, previous: nil, runID: runID) }
        let expectedPrevious = names.map { Hello.carried(name: $0[(rank + size - 1) % size]) }
        async let accepted = listener.accept(ringEpoch: options.local.ringEpoch, rank: UInt32(rank), timeout: patience) {
            expectedPrevious == nil || $0.peer.name == expectedPrevious
        }
        let (host, port) = peers[(rank + 1) % size]
        let previousAddress = peers[(rank + size - 1) % size]
        let next: PeerLink
        do {
            next = try await PeerLink.connect(host: host, port: port, options: options, group: group, patience: patience)
            if let expected = names?[(rank + 1) % size], next.peer.name != Hello.carried(name: expected) {
                let answered = next.peerDescription
                await next.close()
                throw TransportError.refused(peer: answered, reason: "rank \((rank + 1) % size) of this ring is '\(expected)', not '\(next.peer.name)'")
            }
        } catch let error as CancellationError {
            _ = try? await accepted
            throw error
        } catch {
            _ = try? await accepted
            throw RingFailure(error, peer: "rank \((rank + 1) % size) at \(host):\(port)", round: nil)
        }
        do {
            return Ring(rank: rank, size: size, next: next, previous: try await accepted, runID: runID)
        } catch {
            await next.close()
            if error is CancellationError { throw error }
            throw RingFailure(error, peer: "rank \((rank + size - 1) % size) at \(previousAddress.host):\(previousAddress.port)", round: nil)
        }
    }

    /// Closes both links.
    public func close() async {
        await (next as? PeerLink)?.close()
        await (previous as? PeerLink)?.close()
    }
}
