import Basics
import ArgumentParser
import Dispatch
import Foundation
import Planner
import TensorCore

struct SimulateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Replay a plan (from plan --json) as discrete events, with stragglers and failures, and report the step times."
    )

    @Option(help: "A plan written by `tributary plan --json`.") var plan: String
    @Option(help: "Steps to simulate.") var steps = 20
    @Option(help: "Slow devices: SITE:REPLICA:STAGE:SLOWDOWN[@STEP], comma-separated (e.g. beijing:0:3:2@5).") var stragglers = ""
    @Option(help: "Lost replicas: SITE:REPLICA@STEP, comma-separated.") var failures = ""
    @Flag(help: "Print JSON.") var json = false

    func validate() throws {
        guard (1...100_000).contains(steps) else { throw ValidationError("--steps must be in 1...100000") }
    }

    func run() throws {
        try reportingErrors {
            guard let data = FileManager.default.contents(atPath: plan) else { throw ValidationError("cannot read \(plan)") }
            let result: PlanResult
            do { result = try JSONDecoder().decode(PlanResult.self, from: data) } catch {
                throw ValidationError("\(plan) is not a plan written by `tributary plan --json`: \(describeDecodingError(error))")
            }
            let slow = try parseStragglers()
            let lost = try parseFailures()
            let sites = Set(result.chosen.sites.map(\.site))
            for name in slow.map(\.site) + lost.map(\.site) where !sites.contains(name) {
                throw ValidationError("no site named '\(name)' in the plan; sites: \(sites.sorted().joined(separator: ", "))")
            }
            let layouts = Dictionary(uniqueKeysWithValues: result.chosen.sites.map { ($0.site, $0.layout) })
            for s in slow {
                let l = layouts[s.site]!
                guard s.replica < l.dataParallel, s.stage < l.pipelineStages else {
                    throw ValidationError("\(s.site) runs \(l.dataParallel) replicas of \(l.pipelineStages) stages; straggler replica \(s.replica) stage \(s.stage) is not one of them")
                }
            }
            for f in lost where f.replica >= layouts[f.site]!.dataParallel {
                throw ValidationError("\(f.site) runs \(layouts[f.site]!.dataParallel) replicas; replica \(f.replica) is not one of them")
            }
            let start = DispatchTime.now().uptimeNanoseconds
            let report = Simulator.run(plan: result.chosen, cluster: result.cluster, steps: steps, stragglers: slow, failures: lost)
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            if json {
                try printJSON(report)
                return
            }
            for note in report.notes { print(note) }
            for (i, t) in report.stepSeconds.enumerated() { print(String(format: "step %3d: %.3f s", i, t)) }
            print(String(format: "mean %.3f s per step; the analytic model says %.3f s (%+.1f%%); %d events simulated in %.2f s",
                         report.meanStepSeconds, report.analyticStepSeconds, 100 * (report.meanStepSeconds / report.analyticStepSeconds - 1),
                         report.events, seconds))
        }
    }

    private func parseStragglers() throws -> [Straggler] {
        try stragglers.split(separator: ",").map { item in
            let (body, step) = try splitStep(String(item))
            let parts = body.split(separator: ":")
            guard parts.count == 4, let replica = Int(parts[1]), let stage = Int(parts[2]), let factor = Double(parts[3]), factor >= 1 else {
                throw ValidationError("--stragglers entries are SITE:REPLICA:STAGE:SLOWDOWN[@STEP] with SLOWDOWN ≥ 1, got '\(item)'")
            }
            return Straggler(site: String(parts[0]), replica: replica, stage: stage, slowdown: factor, fromStep: step ?? 0)
        }
    }

    private func parseFailures() throws -> [Failure] {
        try failures.split(separator: ",").map { item in
            let (body, step) = try splitStep(String(item))
            let parts = body.split(separator: ":")
            guard parts.count == 2, let replica = Int(parts[1]), let step else {
                throw ValidationError("--failures entries are SITE:REPLICA@STEP, got '\(item)'")
            }
            return Failure(site: String(parts[0]), replica: replica, atStep: step)
        }
    }

    private func splitStep(_ text: String) throws -> (String, Int?) {
        let parts = text.split(separator: "@")
        guard parts.count <= 2 else { throw ValidationError("'\(text)' has more than one @") }
        if parts.count == 2 {
            guard let step = Int(parts[1]), step >= 0 else { throw ValidationError("'\(text)': the step after @ must be a number") }
            return (String(parts[0]), step)
        }
        return (text, nil)
    }
}
