import Basics
import Collectives
import Coordination
import Dispatch
import TensorCore
import Training

extension DistributedTrainer {
    /// A round's all-reduce running in the background (overlapped DiLoCo).
    private struct InFlight {
        let task: Task<CollectiveStats, any Error>
        let message: FloatSlab
        let guess: Float
        let fragment: Int
        let ownNorm: Float
        let round: Int
    }

    /// DiLoCo: rounds of inner steps from the shared parameters G, then the averaged progress
    /// (the pseudo-gradient) through the codec and the outer optimizer into G. With F streaming
    /// fragments, round r sends only fragment r mod F (`InterleavedFragments`), each the progress since that
    /// fragment's last sync; the other coordinates keep training locally. With overlap, a round's
    /// all-reduce runs during the next round's inner steps (one round of delay, or two with
    /// `overlapRounds` 2: see `SumPacing`): when it lands, the worker's copy of that fragment becomes
    /// G's plus what the worker trained meanwhile.
    func runDiLoCo(from saved: StrategyState?, report: (WorkerReport) async -> Void) async throws -> WorkerReport {
        let config = trainer.config
        let h = strategy.innerSteps
        let rounds = strategy.rounds(steps: config.steps)
        let parameters = trainer.model.parameters.buffer
        let count = parameters.count
        var plan = DiLoCoRounds(innerSteps: h, workers: ring.size, timed: strategy.round == .time, tokensPerStep: config.tokensPerStep,
                                saved: saved)
        let tail = plan.tailCount
        // With overlap, a round's validation sums travel in its own background all-reduce (exact, after the
        // plan's tail) and are read when it lands: a validation of its own would hold every worker up to
        // the slowest, which overlap lets run up to a round behind.
        let validationTail = strategy.overlap ? 2 : 0
        // G, the shared parameters (bit-identical on every worker), and S, per coordinate where this
        // worker's unsent progress is measured from: G at the coordinate's last sync, or with overlap
        // where the worker was when its fragment was last sent.
        var global = Array(parameters)
        var start = global
        let fragments = strategy.fragments
        let layout = InterleavedFragments(count: count, fragments: fragments)
        let settings = OuterSettings(strategy: strategy, workers: ring.size, rounds: strategy.outerSteps(steps: config.steps))
        var outer = NesterovSGD(count: count, learningRate: settings.learningRate, momentum: settings.momentum)
        // Resuming: G is in the model (restored), with the outer momentum as it was saved.
        if let velocity = saved?.outerVelocity, !outer.restore(velocity: velocity) {
            throw ConfigError(field: "resume", reason: "the saved outer momentum has the wrong size")
        }
        let evaluateEvery = config.evaluation.interval > 0 ? max(1, config.evaluation.interval / h) : Int.max
        let checkpointEvery = config.checkpoint.interval > 0 ? max(1, config.checkpoint.interval / h) : Int.max
        // Sums in the background, oldest first; each lands `landsAfter` rounds after it was sent.
        var inFlight: [InFlight] = []
        let landsAfter = strategy.overlap ? strategy.overlapRounds : 0
        var last: WorkerReport?

        /// Applies an all-reduced message to G: undo the weight guess, outer step, next budget —
        /// unless the guard rejects the update, which then never reaches G.
        func apply(_ message: FloatSlab, guess: Float, fragment: Int) throws -> UpdateGuard.Verdict {
            let share = message.count - tail - validationTail
            let pseudo = UnsafeMutableBufferPointer(rebasing: message.buffer[..<share])
            let correction = try plan.absorb(tail: UnsafeBufferPointer(rebasing: message.buffer[share..<(share + tail)]), guess: guess)
            if plan.timed { for i in 0..<share { pseudo[i] *= correction } }
            let verdict = updateGuard.judge(UnsafeBufferPointer(pseudo))
            guard verdict.isAccepted else { return verdict }
            global.withUnsafeMutableBufferPointer {
                outer.step(parameters: $0, gradient: UnsafeBufferPointer(pseudo), fragment: fragment, of: fragments)
            }
            return verdict
        }

        /// The validation loss a landed message carried, if its round validated.
        func carriedValidation(_ message: FloatSlab) -> Double? {
            guard validationTail > 0 else { return nil }
            let sum = message.base[message.count - 2], batches = message.base[message.count - 1]
            return batches > 0 && sum.isFinite ? Double(sum / batches) : nil
        }

        for round in (saved?.progress ?? 0)..<rounds {
            let roundStarted = DispatchTime.now().uptimeNanoseconds
            // Inner steps: a fixed count, or as many as fit the round's time budget.
            let fixed = min(h, config.steps - round * h)
            let inner: (steps: Int, lossSum: Double, seconds: Double)
            if round == finishesRound, let held = memory?.restorePending(round: round, into: trainer) {
                inner = held
            } else if let engine = innerEngine {
                inner = try await engineSteps(engine, round: round, fixed: fixed, plan: &plan)
            } else {
                inner = try await innerSteps(fixed: fixed, plan: &plan)
            }
            let (steps, lossSum, roundCompute) = inner
            plan.endRound(computeSeconds: roundCompute)
            // Kept until the round is complete: if its all-reduce breaks, the survivors finish it from here.
            if fragments == 1 && !strategy.overlap {
                memory?.rememberPending(trainer, round: round, steps: steps, lossSum: lossSum, computeSeconds: roundCompute)
            }
            computeSeconds += roundCompute
            let roundTokens = steps * config.tokensPerStep
            tokens += roundTokens

            // This round's progress (of its fragment), weighted (see `DiLoCoRounds`), then the exact tail.
            let (guess, weight) = plan.weight(roundTokens: roundTokens)
            let fragment = round % fragments
            let share = layout.size(of: fragment)
            let message = FloatSlab(count: share + tail + validationTail)
            let pseudo = UnsafeMutableBufferPointer(rebasing: message.buffer[..<share])
            start.withUnsafeBufferPointer { s in
                layout.forEachRun(of: fragment) { values, offset in
                    let (s, p, out) = (s.baseAddress! + values.lowerBound, parameters.baseAddress! + values.lowerBound,
                                       pseudo.baseAddress! + offset)
                    for k in 0..<values.count { out[k] = (s[k] - p[k]) * weight }
                }
            }
            let ownNorm = try screenOwnContribution(pseudo, round: round)
            let planTail = UnsafeMutableBufferPointer(rebasing: message.buffer[share..<(share + tail)])
            plan.fillTail(planTail, rank: ring.rank, roundTokens: roundTokens,
                          meanStepSeconds: roundCompute / Double(steps))
            try collectives.compress(pseudo, fragment: fragment, of: fragments)

            // Exchanges that ran in the background land in G when due (all of them in the last round), and
            // this worker's copy of each fragment moves onto it, keeping what it trained since it was sent.
            let final = round == rounds - 1
            var landedValidation: Double?
            while let pending = inFlight.first, final || pending.round <= round - landsAfter {
                try await collectives.landed(pending.task)
                inFlight.removeFirst()
                let verdict = try apply(pending.message, guess: pending.guess, fragment: pending.fragment)
                if !verdict.isAccepted {
                    // Telling each other the norms takes the ring: the later sum still on it goes first.
                    try await collectives.settle(inFlight.map(\.task))
                    try await rejectUpdate(verdict, ownNorm: pending.ownNorm, round: pending.round)
                }
                global.withUnsafeBufferPointer { g in
                    start.withUnsafeMutableBufferPointer { s in
                        layout.forEachRun(of: pending.fragment) { values, _ in
                            let (g, s, p) = (g.baseAddress! + values.lowerBound, s.baseAddress! + values.lowerBound,
                                             parameters.baseAddress! + values.lowerBound)
                            for k in 0..<values.count {
                                p[k] = g[k] - (s[k] - p[k])
                                s[k] = g[k]
                            }
                        }
                    }
                }
                landedValidation = carriedValidation(pending.message) ?? landedValidation
            }
            let evaluate = final || (round + 1) % evaluateEvery == 0
            let save = (round + 1) % checkpointEvery == 0
            let overlapped = strategy.overlap && !final
            // With overlap, a sum is paced over the time it has (about a round) so that it does not take the
            // link's full rate; so is a streaming run's last, a fragment (its point is a lower peak: sent in a
            // fifth of a round, it alone set the busiest second), though no slower than the busiest second so far,
            // while a whole model's last sum goes at once. Timed rounds share a schedule (a budget each), and a
            // worker's carry says how far behind it it is.
            let pace: Double?
            if strategy.overlap && (overlapped || fragments > 1) {
                let elapsed = Double(DispatchTime.now().uptimeNanoseconds - roundStarted) / 1e9
                let (roundSeconds, late) = plan.budgetSeconds.map { ($0, -plan.carrySeconds) } ?? (elapsed, 0)
                let seconds = SumPacing.sendSeconds(roundSeconds: roundSeconds, lateSeconds: late, roundsToLand: landsAfter)
                let paced = collectives.pace(count: message.count, exactTail: tail + validationTail, over: seconds)
                pace = final ? paced.map { SumPacing.lastPace(paced: $0, busiestSecond: collectives.peakRates.inASecond) } : paced
            } else {
                pace = nil
            }
            if !overlapped {
                try await collectives.allReduce(message.buffer, codec: collectives.codec, exactTail: tail + validationTail, pace: pace)
                let verdict = try apply(message, guess: guess, fragment: fragment)
                if !verdict.isAccepted { try await rejectUpdate(verdict, ownNorm: ownNorm, round: round) }
            }
            // Whole-model rounds and the last round (the run's result is G; what fragments did since their
            // last sync stays unsent): the model becomes G. Streaming or overlap: the model keeps this worker's
            // own values where they have not reached G yet; without overlap, this round's fragment did.
            let keepsOwn = (fragments > 1 || overlapped) && !final
            if !keepsOwn {
                global.withUnsafeBufferPointer { g in
                    _ = parameters.update(fromContentsOf: g)
                    _ = start.withUnsafeMutableBufferPointer { $0.update(fromContentsOf: g) }
                }
            } else if !overlapped {
                global.withUnsafeBufferPointer { g in
                    layout.copy(fragment, from: g, to: parameters)
                    start.withUnsafeMutableBufferPointer { layout.copy(fragment, from: g, to: $0) }
                }
            }
            // Moment sync, validation, checkpoint and the reported hash (of G, the same on every
            // worker; with overlap, G lags this round's progress, which is still on its way) run
            // before this round's background all-reduce starts: nothing else may use the ring meanwhile
            // (with two rounds to land, the last round's may still be on it: moment sync waits for it).
            let shared = keepsOwn ? global : nil
            if strategy.momentSync > 0, (round + 1) % strategy.momentSync == 0, !final {
                try await collectives.settle(inFlight.map(\.task))
                try await averageOptimizerState()
            }
            var validation = landedValidation
            if evaluate && overlapped {
                let sums = try await validationShare(work: plan.lastWork, shared: shared)
                for (i, v) in sums.enumerated() { message.base[message.count - 2 + i] = v }
            } else if evaluate {
                validation = try await sharedValidationLoss(work: plan.lastWork, shared: shared)
            }
            try saveCheckpointIfDue(final: final, due: save, state: StrategyState(
                progress: round + 1, previousTotalTokens: plan.previousTotalTokens, roundBudgetSeconds: plan.budgetSeconds,
                roundCarrySeconds: plan.timed ? plan.carrySeconds : nil,
                outerVelocity: outer.velocity), shared: shared)
            let r = makeReport(round: round, rounds: rounds, loss: lossSum / Double(steps), validation: validation, finished: final,
                               shared: shared)
            if overlapped {
                // Send this round's progress in the background and go on from where this worker is: the
                // fragment's progress from here on is measured from now, and it moves onto G when the sum lands.
                let task = collectives.launch(message, exactTail: tail + validationTail, pace: pace, after: inFlight.last?.task)
                inFlight.append(InFlight(task: task, message: message, guess: guess, fragment: fragment, ownNorm: ownNorm, round: round))
                start.withUnsafeMutableBufferPointer { layout.copy(fragment, from: UnsafeBufferPointer(parameters), to: $0) }
            }
            collectives.roundEnded(seconds: Double(DispatchTime.now().uptimeNanoseconds - roundStarted) / 1e9)
            await report(r)
            last = r
            if !final, ringChanged?() == true {
                for pending in inFlight { _ = try? await pending.task.value }
                throw RingChange()
            }
        }
        return last!
    }

    /// An engine outside this process trains the round: `fixed` steps, or as many as fit the round's time
    /// budget. The first timed round starts with one step, whose time every worker shares for the budget,
    /// as the native loop does.
    private func engineSteps(_ engine: any InnerEngine, round: Int, fixed: Int, plan: inout DiLoCoRounds) async throws
        -> (steps: Int, lossSum: Double, seconds: Double) {
        // A timed round ends by its budget; the step limit only bounds a misbehaving engine.
        let limit = plan.timed ? max(fixed, strategy.innerSteps) * 1000 : fixed
        let parameters = trainer.model.parameters.buffer
        var trained = try await engine.trainRound(round, steps: plan.needsFirstBudget ? 1 : limit, budgetSeconds: plan.ownBudgetSeconds,
                                                  parameters: parameters)
        var lossSum = trained.meanLoss * Double(trained.steps)
        if plan.needsFirstBudget {
            let all = try await collectives.exchangeAll([0, Float(trained.computeSeconds)])
            try plan.setFirstBudget(fastestStepSeconds: Double(all.map { $0[1] }.min()!))
            if !plan.isOver(steps: trained.steps, computeSeconds: trained.computeSeconds, fixedSteps: fixed),
               let budget = plan.ownBudgetSeconds {
                let more = try await engine.trainRound(round, steps: limit - 1, budgetSeconds: budget - trained.computeSeconds,
                                                       parameters: parameters)
                lossSum += more.meanLoss * Double(more.steps)
                trained.steps += more.steps
                trained.computeSeconds += more.computeSeconds
            }
        }
        ledger?.add(trained.steps * trainer.config.tokensPerStep)
        // The steps count as this process's, so that checkpoints and reports number them as every worker does.
        trainer.restore(step: trainer.step + trained.steps, trainCursor: trainer.trainCursor)
        return (trained.steps, lossSum, trained.computeSeconds)
    }

    /// This process's own inner steps: `fixed` of them, or as many as fit the round's time budget.
    private func innerSteps(fixed: Int, plan: inout DiLoCoRounds) async throws -> (steps: Int, lossSum: Double, seconds: Double) {
        var steps = 0, lossSum = 0.0, seconds = 0.0
        repeat {
            if roundAbandoned?() == true {
                throw RingFailure(kind: .lost, peer: "this worker ('\(name)')", round: nil,
                                  detail: "it did not run for longer than the coordinator waits, and the others went on without it")
            }
            let ((loss, _, _), stepSeconds) = try await throttle.run { try trainer.trainStep() }
            ledger?.add(trainer.config.tokensPerStep)
            steps += 1
            lossSum += Double(loss)
            seconds += stepSeconds
            if plan.needsFirstBudget {
                // The first round's budget comes from everyone's first step.
                let all = try await collectives.exchangeAll([0, Float(stepSeconds)])
                try plan.setFirstBudget(fastestStepSeconds: Double(all.map { $0[1] }.min()!))
            }
        } while !plan.isOver(steps: steps, computeSeconds: seconds, fixedSteps: fixed)
        return (steps, lossSum, seconds)
    }
}
