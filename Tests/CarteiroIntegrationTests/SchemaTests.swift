import Foundation
import Testing
import CarteiroTesting

/// The JSON Schemas are the contract with the desk: the examples, the golden corpus's events and
/// the submissions the tests send all match them (and every daemon a test runs has its spool
/// checked when it ends, in `DaemonProcess`).
struct SchemaTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardized.path

    @Test func examplesAndTheGoldenCorpusMatchTheEventSchema() {
        let result = validateAgainstSchema([Self.root + "/schemas/examples", Self.root + "/Tests/CarteiroEventsTests/Fixtures"])
        #expect(result.status == 0, "\(result.stdout)")
    }

    @Test func submissionExamplesMatchTheSubmissionSchema() {
        let result = validateAgainstSchema([Self.root + "/schemas/examples/submissions"], submissions: true)
        #expect(result.status == 0, "\(result.stdout)")
    }

    @Test func theSchemaRefusesWhatIsNotAnEvent() throws {
        let directory = try TemporaryDirectory()
        let bad = try directory.write("bad.json", #"{"id": "x", "type": "request.maybe", "mailbox": "m", "received_at": "yesterday", "flags": ["shiny"]}"#)
        let result = validateAgainstSchema([bad])
        #expect(result.status == 1)
        #expect(result.stdout.contains("request.maybe") && result.stdout.contains("yesterday") && result.stdout.contains("shiny"), "\(result.stdout)")
    }
}
