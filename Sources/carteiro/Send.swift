import ArgumentParser
import CarteiroConfig
import CarteiroDaemon
import CarteiroOutbound
import CarteiroStore
import Foundation

struct Send: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send",
        abstract: "Validate, resolve and queue one notification; print its queue id.",
        discussion: "The mailbox: --mailbox, else the step's specific mailbox, else the contract's, else the system's. While the daemon runs, the submission is handed to it through the outbox; otherwise it is queued here. Exit 0 once queued (the daemon sends it), 65 when the submission cannot be resolved, 78 when the configuration is wrong."
    )

    @OptionGroup var options: ConfigOptions
    @Option(help: "The workflow whose e-mail step this is (with --step).") var workflow: String?
    @Option(help: "The e-mail step of the workflow.") var step: String?
    @Option(help: "An outbound mailbox to send through, whatever the step says.") var mailbox: String?
    @Option(help: "The request's contract.") var contract: String?
    @Option(help: "The request this notification is about (its tag goes in the subject).") var request: String?
    @Option(help: "An extra recipient (repeatable).") var to: [String] = []
    @Option(help: "A copy recipient (repeatable).") var cc: [String] = []
    @Option(help: "A blind-copy recipient (repeatable).") var bcc: [String] = []
    @Option(name: .customLong("reply-to"), help: "Where replies go (Reply-To; repeatable).") var replyTo: [String] = []
    @Option(name: .customLong("attach"), help: ArgumentHelp("A file to send with the message (repeatable); its type from its extension, or FILE:TYPE.", valueName: "file")) var attach: [String] = []
    @Option(help: "The subject, instead of the step's template.") var subject: String?
    @Option(help: "The text body, instead of the step's template.") var text: String?
    @Option(help: "The HTML body, instead of the step's template.") var html: String?
    @Option(name: .customLong("var"), help: ArgumentHelp("A template variable (repeatable).", valueName: "key=value")) var vars: [String] = []
    @Flag(help: "One message to every recipient instead of one each.") var oneMessage = false

    func run() throws {
        let (configuration, _) = try options.load()
        try options.actAsStateOwner(configuration, command: "send")
        var variables: [String: String] = [:]
        for pair in vars {
            guard let equals = pair.firstIndex(of: "="), equals != pair.startIndex else {
                Output.error("carteiro send: --var needs KEY=VALUE, got \"\(pair)\"")
                throw ExitCode(64)
            }
            variables[String(pair[..<equals])] = String(pair[pair.index(after: equals)...])
        }
        var attachments: [SubmissionAttachment] = []
        for item in attach {
            var path = item, type: String?
            if let colon = item.lastIndex(of: ":"), item[item.index(after: colon)...].contains("/") {
                path = String(item[..<colon])
                type = String(item[item.index(after: colon)...])
            }
            switch RegularFile.read(path, limit: 32 << 20) {
            case .success(let bytes):
                let name = (path as NSString).lastPathComponent
                attachments.append(SubmissionAttachment(name: name, type: type ?? Send.guessType(name), contentBase64: Data(bytes).base64EncodedString()))
            case .failure(let problem):
                Output.error("carteiro send: --attach \(path) \(problem)")
                throw ExitCode(66) // EX_NOINPUT
            }
        }
        let submission = Submission(workflow: workflow, step: step, mailbox: mailbox, contract: contract, request: request,
                                    to: to.isEmpty ? nil : to, cc: cc.isEmpty ? nil : cc, bcc: bcc.isEmpty ? nil : bcc,
                                    subject: subject, text: text, html: html, vars: variables.isEmpty ? nil : variables,
                                    oneMessage: oneMessage ? true : nil, replyTo: replyTo.isEmpty ? nil : replyTo,
                                    attachments: attachments.isEmpty ? nil : attachments)
        switch OutboundService.submit(submission, configuration: configuration) {
        case .success(let queued):
            Output.line(queued.id)
            let verb = queued.handover == .queued ? "queued" : "handed to the daemon"
            for message in queued.messages {
                Output.error("\(verb) through \(message.mailbox) (\(message.resolution.explanation)) to \(message.recipients.joined(separator: ", "))")
            }
            if queued.handover == .outbox(daemonRunning: false) {
                Output.error("the daemon is not running: the submission waits in \(configuration.daemon.stateDirectory)/outbox and is sent once it starts (systemctl start carteiro)")
            }
        case .failure(let rejection):
            Output.error("carteiro send: \(rejection)")
            throw ExitCode(65) // EX_DATAERR
        }
    }
}

extension Send {
    /// The usual types by extension; anything else is application/octet-stream.
    static func guessType(_ name: String) -> String {
        let types = ["pdf": "application/pdf", "txt": "text/plain", "csv": "text/csv", "html": "text/html", "htm": "text/html",
                     "png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif", "zip": "application/zip",
                     "json": "application/json", "xml": "application/xml", "eml": "message/rfc822", "ics": "text/calendar",
                     "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                     "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                     "odt": "application/vnd.oasis.opendocument.text"]
        let ext = (name as NSString).pathExtension.lowercased()
        return types[ext] ?? "application/octet-stream"
    }
}

struct Queue: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "queue",
        abstract: "List, retry or delete queued outbound messages (also while the daemon runs).",
        subcommands: [List.self, Retry.self, Delete.self]
    )

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "Every queued and failed message with its recipients' state.")
        @OptionGroup var options: ConfigOptions

        func run() throws {
            let (configuration, _) = try options.load()
            try options.actAsStateOwner(configuration, command: "queue list")
            let queue = OutboundQueue(stateDirectory: configuration.daemon.stateDirectory)
            var count = 0
            let now = Int64(Date().timeIntervalSince1970)
            for lane in queue.lanes() {
                for item in queue.messages(in: lane) {
                    count += 1
                    let next = item.nextAttempt <= now ? "due now" : "next attempt in \(item.nextAttempt - now)s"
                    Output.line("\(item.id)  \(lane)  \(item.attempts) attempts, \(next)" + (item.request.map { ", request \($0)" } ?? ""))
                    for recipient in item.recipients {
                        Output.line("    \(recipient.state.rawValue)  \(recipient.address)" + (recipient.code.map { "  \($0) \(recipient.reply ?? "")" } ?? ""))
                    }
                    if let error = item.lastError { Output.line("    last error: \(error)") }
                }
            }
            for item in queue.failedMessages() {
                count += 1
                Output.line("\(item.id)  failed (\(item.mailbox))  \(item.lastError ?? "")")
                for recipient in item.recipients {
                    Output.line("    \(recipient.state.rawValue)  \(recipient.address)" + (recipient.code.map { "  \($0) \(recipient.reply ?? "")" } ?? ""))
                }
            }
            if count == 0 { Output.line("the queue is empty") }
        }
    }

    struct Retry: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "retry",
            abstract: "Make a queued message due now, or put a failed one back in its lane.",
            discussion: "While the daemon runs, the lane that owns the message applies this; otherwise the command does, under the state directory's lock.")
        @Argument(help: "The queue id.") var id: String
        @OptionGroup var options: ConfigOptions

        func run() throws {
            let (configuration, _) = try options.load()
            try options.actAsStateOwner(configuration, command: "queue retry")
            try Queue.report("retry", QueueAdmin.perform(.retry, id: id, stateDirectory: configuration.daemon.stateDirectory))
        }
    }

    struct Delete: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "delete",
            abstract: "Remove a queued or failed message without sending it.",
            discussion: "While the daemon runs, the lane that owns the message applies this; otherwise the command does, under the state directory's lock.")
        @Argument(help: "The queue id.") var id: String
        @OptionGroup var options: ConfigOptions

        func run() throws {
            let (configuration, _) = try options.load()
            try options.actAsStateOwner(configuration, command: "queue delete")
            try Queue.report("delete", QueueAdmin.perform(.delete, id: id, stateDirectory: configuration.daemon.stateDirectory))
        }
    }

    /// Prints the outcome; exit 0 done, 1 no such message, 64 not an id, 75 the daemon has not
    /// answered yet, 74 the state directory failed.
    static func report(_ verb: String, _ outcome: QueueAdmin.Outcome, command: String = "queue") throws {
        switch outcome {
        case .done(let message):
            Output.line(message)
        case .notFound(let message):
            Output.error("carteiro \(command) \(verb): \(message)")
            throw ExitCode(1)
        case .invalid(let message):
            Output.error("carteiro \(command) \(verb): \(message)")
            throw ExitCode(64)
        case .pending(let message):
            Output.error("carteiro \(command) \(verb): \(message)")
            throw ExitCode(75)
        case .failed(let message):
            Output.error("carteiro \(command) \(verb): \(message)")
            throw ExitCode(74)
        }
    }
}
