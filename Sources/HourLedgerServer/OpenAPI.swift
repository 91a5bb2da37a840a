import Hummingbird

/// `GET /openapi.yaml`: the API as OpenAPI 3.1. A test checks that every route in the router is in it, and back.
public enum OpenAPIRoutes {
    public static func register<Context: RequestContext>(on router: Router<Context>) {
        router.get("/openapi.yaml") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/yaml; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(string: document)))
        }
    }

    public static let document = #"""
openapi: 3.1.0
info:
  title: HourLedger
  version: "1"
  description: |
    Contract hours kept outside the helpdesk. Durations are integer seconds; dates are RFC 3339 date-times
    (fractions of a second are accepted and dropped; an impossible day such as 2026-02-30 is refused).
    Every `/api/v1` endpoint needs `Authorization: Bearer <token>` (see `hourledger token`).
    Errors are `{"error": "...", "field": "..."}` with a 4xx or 5xx status.
servers:
  - url: http://127.0.0.1:8470
components:
  securitySchemes:
    bearer:
      type: http
      scheme: bearer
  parameters:
    contractID:
      name: id
      in: path
      required: true
      schema: {type: string}
    entryKey:
      name: key
      in: path
      required: true
      schema: {type: string}
    timerID:
      name: id
      in: path
      required: true
      schema: {type: integer, format: int64}
    format:
      name: format
      in: query
      schema: {type: string, enum: [json, csv], default: json}
  responses:
    Error:
      description: The request was refused; `error` says why, `field` names the input at fault.
      content:
        application/json:
          schema: {$ref: "#/components/schemas/Error"}
  schemas:
    Error:
      type: object
      required: [error]
      properties:
        error: {type: string}
        field: {type: string}
    ContractBalance:
      type: object
      properties:
        id: {type: string}
        name: {type: string}
        timezone: {type: string}
        billing_mode: {type: string}
        period_key: {type: string}
        period_start: {type: string}
        period_end: {type: string}
        quota_seconds: {type: integer}
        carried_in_seconds: {type: integer}
        top_up_seconds: {type: integer, description: purchased hours usable in this period}
        available_seconds: {type: integer, description: quota + carried in + top-ups}
        used_seconds: {type: integer}
        raw_seconds: {type: integer}
        expired_seconds: {type: integer}
        overage_seconds: {type: integer}
        remaining_seconds: {type: integer}
        percent_used: {type: number}
        entry_count: {type: integer}
        closed: {type: boolean}
    TopUp:
      type: object
      properties:
        id: {type: integer, format: int64}
        contract_id: {type: string}
        seconds: {type: integer}
        note: {type: string}
        price: {type: integer, description: "minor units; absent: the hours at the contract's overage rate"}
        expires: {type: string, format: date, description: "the last day the hours may be used, in the contract's time zone"}
        added_at: {type: string, format: date-time}
        added_by: {type: string}
        voided_at: {type: string, format: date-time}
        voided_by: {type: string}
        void_reason: {type: string}
    Timer:
      type: object
      properties:
        id: {type: integer, format: int64}
        technician: {type: integer}
        ticket_id: {type: integer}
        status: {type: string, enum: [running, paused, stopped]}
        elapsed_seconds: {type: integer}
        started_at: {type: string, format: date-time}
        needs_review: {type: boolean}
        review_reason: {type: string, enum: [cap, ticket_closed], description: why the timer waits for review; absent when it does not}
        entry_id: {type: integer, format: int64}
    Entry:
      type: object
      properties:
        key: {type: string}
        ticket_id: {type: integer}
        contract_id: {type: string}
        period_key: {type: string}
        worked_at: {type: string, format: date-time}
        raw_seconds: {type: integer}
        billed_seconds: {type: integer}
        kind: {type: string, enum: [billable, internal, prepaid]}
        note: {type: string}
        approval: {type: string, enum: [approved, pending, rejected]}
        helpdesk_task_id: {type: integer, description: "The helpdesk task its write-back created (GLPI), once known."}
        glpi_task_id: {type: integer, deprecated: true, description: The same as helpdesk_task_id, under its earlier name.}
    OutboxItem:
      type: object
      properties:
        id: {type: integer, format: int64}
        entry_key: {type: string}
        action: {type: string, enum: [create, update, delete]}
        ticket_id: {type: integer}
        attempts: {type: integer}
        next_attempt_at: {type: string, format: date-time}
        last_error: {type: string}
        in_doubt_since: {type: string, format: date-time, description: Set while the last attempt's outcome is unknown.}
        parked_at: {type: string, format: date-time, description: Set when the helpdesk refused it for good.}
        created_at: {type: string, format: date-time}
        done_at: {type: string, format: date-time}
        resolution: {type: string, enum: [delivered, found, cancelled, discarded]}
    WebhookAccepted:
      type: object
      properties:
        accepted: {type: boolean}
        ticket_id: {type: integer}
        reason: {type: string, description: Set when the delivery was valid but not about a ticket.}
paths:
  /healthz:
    get:
      summary: Liveness and readiness for load balancers.
      responses:
        "200": {description: Healthy.}
        "503": {description: "Not healthy: the problems are listed."}
  /status:
    get:
      summary: What ops watch - this process's role (leader, standby or single), helpdesk reachability, poll lag, outbox, alerts, balances.
      responses:
        "200": {description: Status document.}
  /metrics:
    get:
      summary: Prometheus text exposition.
      description: |
        Counters `hourledger_polls_total{outcome}`, `hourledger_helpdesk_requests_total{helpdesk,outcome}`,
        `hourledger_webhooks_total{helpdesk,outcome}`; histogram `hourledger_helpdesk_request_duration_seconds`;
        gauges for the outbox, entries, alerts, pending hints, this process's role (`hourledger_leader`,
        `hourledger_leader_term`, `hourledger_leader_takeovers`) and, per contract, available, used, remaining and
        overage seconds.
      responses:
        "200":
          description: Metrics.
          content:
            text/plain: {schema: {type: string}}
  /openapi.yaml:
    get:
      summary: This document.
      responses:
        "200":
          description: OpenAPI 3.1 in YAML.
          content:
            application/yaml: {schema: {type: string}}
  /api/v1/contracts:
    get:
      summary: Every contract's current period balance.
      security: [{bearer: []}]
      responses:
        "200":
          description: Balances.
          content:
            application/json:
              schema: {type: array, items: {$ref: "#/components/schemas/ContractBalance"}}
        "401": {$ref: "#/components/responses/Error"}
  /api/v1/contracts/{id}:
    get:
      summary: One contract - balance, tickets behind it, all periods, recent alerts.
      security: [{bearer: []}]
      parameters:
        - $ref: "#/components/parameters/contractID"
        - {name: at, in: query, description: "An instant inside the period wanted, from the contract's start to a year ahead.",
           schema: {type: string, format: date-time}}
      responses:
        "200": {description: Contract detail.}
        "400": {$ref: "#/components/responses/Error"}
        "401": {$ref: "#/components/responses/Error"}
        "404": {$ref: "#/components/responses/Error"}
  /api/v1/contracts/{id}/invoice-preview:
    get:
      summary: What the period would invoice (manager role).
      security: [{bearer: []}]
      parameters:
        - $ref: "#/components/parameters/contractID"
        - {name: period, in: query, schema: {type: string, default: current}, description: "current, previous, YYYY-MM or YYYY-MM-DD"}
        - $ref: "#/components/parameters/format"
      responses:
        "200": {description: The preview, as JSON or CSV.}
        "400": {$ref: "#/components/responses/Error"}
        "401": {$ref: "#/components/responses/Error"}
        "403": {$ref: "#/components/responses/Error"}
        "404": {$ref: "#/components/responses/Error"}
  /api/v1/invoices/accounting:
    get:
      summary: Every contract's invoice lines for a period, in the columns an accounting import takes (manager role).
      description: >-
        CSV columns customer, contract_id, contract_name, period, description, quantity_hours, unit_price, amount,
        currency, entry_refs (money in major units); JSON has the same with money in minor units, quantity_seconds and
        the period's instants. A fixed fee (a block) has no unit price.
      security: [{bearer: []}]
      parameters:
        - {name: period, in: query, schema: {type: string, default: previous}, description: "current, previous, YYYY-MM or YYYY-MM-DD"}
        - {name: contract, in: query, schema: {type: string}, description: only this contract}
        - $ref: "#/components/parameters/format"
      responses:
        "200": {description: The lines, as CSV or JSON.}
        "400": {$ref: "#/components/responses/Error"}
        "401": {$ref: "#/components/responses/Error"}
        "403": {$ref: "#/components/responses/Error"}
        "404": {$ref: "#/components/responses/Error"}
  /api/v1/contracts/{id}/top-ups:
    get:
      summary: A block contract's purchased hours, voided ones included (manager role).
      security: [{bearer: []}]
      parameters:
        - {name: id, in: path, required: true, schema: {type: string}}
      responses:
        "200":
          description: Top-ups, oldest first.
          content:
            application/json:
              schema: {type: array, items: {$ref: "#/components/schemas/TopUp"}}
        "401": {$ref: "#/components/responses/Error"}
        "403": {$ref: "#/components/responses/Error"}
        "404": {$ref: "#/components/responses/Error"}
    post:
      summary: Adds purchased hours to a block contract (manager role), used after the period's quota and carried-over hours.
      description: >-
        Give `hours` (10, 2.5 or "1:30") or `seconds`, a one-line `note`, and optionally `expires` (YYYY-MM-DD, from
        today on: the hours lapse when the period holding that day ends) and `price` (minor units).
      security: [{bearer: []}]
      parameters:
        - {name: id, in: path, required: true, schema: {type: string}}
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              required: [note]
              properties:
                hours: {oneOf: [{type: number}, {type: string}]}
                seconds: {type: integer}
                note: {type: string}
                expires: {type: string, format: date}
                price: {type: integer}
      responses:
        "201":
          description: The top-up.
          content:
            application/json:
              schema: {$ref: "#/components/schemas/TopUp"}
        "400": {$ref: "#/components/responses/Error"}
        "401": {$ref: "#/components/responses/Error"}
        "403": {$ref: "#/components/responses/Error"}
        "404": {$ref: "#/components/responses/Error"}
  /api/v1/top-ups/{id}/void:
    post:
      summary: Voids a mistaken top-up with a `reason` (manager role); it stays on record and its hours stop counting.
      security: [{bearer: []}]
      parameters:
        - {name: id, in: path, required: true, schema: {type: integer, format: int64}}
      requestBody:
        required: true
        content:
          application/json:
            schema: {type: object, required: [reason], properties: {reason: {type: string}}}
      responses:
        "200":
          description: The voided top-up.
          content:
            application/json:
              schema: {$ref: "#/components/schemas/TopUp"}
        "400": {$ref: "#/components/responses/Error"}
        "401": {$ref: "#/components/responses/Error"}
        "403": {$ref: "#/components/responses/Error"}
        "404": {$ref: "#/components/responses/Error"}
        "409": {$ref: "#/components/responses/Error"}
  /api/v1/unmatched:
    get:
      summary: Tickets no contract rule matches, with the reason.
      security: [{bearer: []}]
      responses:
        "200": {description: Unmatched tickets.}
        "401": {$ref: "#/components/responses/Error"}
  /api/v1/outbox:
    get:
      summary: Write-backs waiting for the helpdesk, or only the parked ones (manager role).
      security: [{bearer: []}]
      parameters:
        - {name: state, in: query, schema: {type: string, enum: [pending, parked], default: pending}}
      responses:
        "200":
          description: Records, oldest first.
          content:
            application/json:
              schema: {type: array, items: {$ref: "#/components/schemas/OutboxItem"}}
        "400": {$ref: "#/components/responses/Error"}
        "401": {$ref: "#/components/responses/Error"}
        "403": {$ref: "#/components/responses/Error"}
  /api/v1/reconciliation:
    get:
      summary: The last comparison of the ledger's seconds per ticket and contract with the helpdesk's own totals (manager role).
      security: [{bearer: []}]
      responses:
        "200": {description: "Tickets compared, totals on both sides, each drift with its cause, and per contract."}
        "401": {$ref: "#/components/responses/Error"}
        "403": {$ref: "#/components/responses/Error"}
        "404": {$ref: "#/components/responses/Error"}
    post:
      summary: Compare now, in one full ticket search (manager role); the result is also what GET returns next.
      security: [{bearer: []}]
      responses:
        "200": {description: The comparison.}
        "401": {$ref: "#/components/responses/Error"}
        "403": {$ref: "#/components/responses/Error"}
        "404": {$ref: "#/components/responses/Error"}
        "502": {$ref: "#/components/responses/Error"}
  /api/v1/outbox/{id}/retry:
    post:
      summary: Try a parked write-back again (manager role).
      security: [{bearer: []}]
      parameters:
        - {name: id, in: path, required: true, schema: {type: integer, format: int64, minimum: 1}}
      responses:
        "200":
          description: The record, no longer parked.
          content:
            application/json:
              schema: {$ref: "#/components/schemas/OutboxItem"}
        "400": {$ref: "#/components/responses/Error"}
        "401": {$ref: "#/components/responses/Error"}
        "403": {$ref: "#/components/responses/Error"}
        "404": {$ref: "#/components/responses/Error"}
        "409": {$ref: "#/components/responses/Error"}
  /api/v1/outbox/{id}/discard:
    post:
      summary: Give a write-back up, with a reason (manager role); a create takes its entry's later records along.
      security: [{bearer: []}]
      parameters:
        - {name: id, in: path, required: true, schema: {type: integer, format: int64, minimum: 1}}
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              required: [reason]
              properties:
                reason: {type: string, minLength: 1}
      responses:
        "200":
          description: The records discarded.
          content:
            application/json:
              schema: {type: array, items: {$ref: "#/components/schemas/OutboxItem"}}
        "400": {$ref: "#/components/responses/Error"}
        "401": {$ref: "#/components/responses/Error"}
        "403": {$ref: "#/components/responses/Error"}
        "404": {$ref: "#/components/responses/Error"}
        "409": {$ref: "#/components/responses/Error"}
  /api/v1/timers:
    get:
      summary: Timers (a technician sees only their own).
      security: [{bearer: []}]
      parameters:
        - {name: mine, in: query, schema: {type: boolean}}
        - {name: running, in: query, schema: {type: boolean}}
      responses:
        "200":
          description: Timers.
          content:
            application/json:
              schema: {type: array, items: {$ref: "#/components/schemas/Timer"}}
        "401": {$ref: "#/components/responses/Error"}
    post:
      summary: Start a server-side timer on a ticket.
      security: [{bearer: []}]
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              required: [ticket]
              properties:
                ticket: {type: integer}
                technician: {type: integer}
      responses:
        "201":
          description: Started.
          content:
            application/json:
              schema: {$ref: "#/components/schemas/Timer"}
        "400": {$ref: "#/components/responses/Error"}
        "401": {$ref: "#/components/responses/Error"}
        "403": {$ref: "#/components/responses/Error"}
        "409": {description: A timer is already open for this technician and ticket.}
        "413": {$ref: "#/components/responses/Error"}
  /api/v1/timers/{id}/pause:
    post: &timerTransition
      summary: Pause, resume or stop a timer. Stopping books an entry.
      security: [{bearer: []}]
      parameters:
        - $ref: "#/components/parameters/timerID"
      requestBody:
        content:
          application/json:
            schema:
              type: object
              properties:
                kind: {type: string, enum: [billable, internal, prepaid]}
                note: {type: string}
                category: {type: integer}
      responses:
        "200": {description: The timer, and the entry when one was booked.}
        "400": {$ref: "#/components/responses/Error"}
        "401": {$ref: "#/components/responses/Error"}
        "403": {$ref: "#/components/responses/Error"}
        "404": {$ref: "#/components/responses/Error"}
        "409": {$ref: "#/components/responses/Error"}
  /api/v1/timers/{id}/resume:
    post: *timerTransition
  /api/v1/timers/{id}/stop:
    post: *timerTransition
  /api/v1/entries:
    get:
      summary: Entries of a ticket or a contract.
      security: [{bearer: []}]
      parameters:
        - {name: ticket, in: query, schema: {type: integer}}
        - {name: contract, in: query, schema: {type: string}}
      responses:
        "200":
          description: Entries.
          content:
            application/json:
              schema: {type: array, items: {$ref: "#/components/schemas/Entry"}}
        "400": {$ref: "#/components/responses/Error"}
        "401": {$ref: "#/components/responses/Error"}
    post:
      summary: Book a manual entry; it is written back to the helpdesk as a private task.
      security: [{bearer: []}]
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              required: [ticket, duration_seconds, started_at]
              properties:
                ticket: {type: integer}
                duration_seconds: {type: integer, minimum: 0, maximum: 86400}
                started_at: {type: string, format: date-time}
                technician: {type: integer}
                billable: {type: boolean, default: true}
                description: {type: string}
                category: {type: integer}
      responses:
        "201":
          description: Booked.
          content:
            application/json:
              schema: {$ref: "#/components/schemas/Entry"}
        "400": {$ref: "#/components/responses/Error"}
        "401": {$ref: "#/components/responses/Error"}
        "403": {$ref: "#/components/responses/Error"}
        "413": {$ref: "#/components/responses/Error"}
  /api/v1/entries/{key}:
    patch:
      summary: Correct an entry; the audit log keeps the before and after.
      security: [{bearer: []}]
      parameters:
        - $ref: "#/components/parameters/entryKey"
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              properties:
                duration_seconds: {type: integer, minimum: 0, maximum: 86400}
                started_at: {type: string, format: date-time}
                billable: {type: boolean}
                note: {type: string, maxLength: 4000}
                reason: {type: string, maxLength: 4000}
      responses:
        "200":
          description: The corrected entry.
          content:
            application/json:
              schema: {$ref: "#/components/schemas/Entry"}
        "400": {$ref: "#/components/responses/Error"}
        "401": {$ref: "#/components/responses/Error"}
        "403": {$ref: "#/components/responses/Error"}
        "404": {$ref: "#/components/responses/Error"}
        "409": {$ref: "#/components/responses/Error"}
    delete:
      summary: Withdraw an entry.
      security: [{bearer: []}]
      parameters:
        - $ref: "#/components/parameters/entryKey"
        - {name: reason, in: query, schema: {type: string}}
      responses:
        "204": {description: Withdrawn.}
        "400": {$ref: "#/components/responses/Error"}
        "401": {$ref: "#/components/responses/Error"}
        "403": {$ref: "#/components/responses/Error"}
        "404": {$ref: "#/components/responses/Error"}
        "409": {$ref: "#/components/responses/Error"}
  /api/v1/entries/{key}/approve:
    post: &review
      summary: Approve or reject an entry waiting for review (manager role).
      security: [{bearer: []}]
      parameters:
        - $ref: "#/components/parameters/entryKey"
      requestBody:
        content:
          application/json:
            schema:
              type: object
              properties:
                note: {type: string}
      responses:
        "200":
          description: The reviewed entry.
          content:
            application/json:
              schema: {$ref: "#/components/schemas/Entry"}
        "400": {$ref: "#/components/responses/Error"}
        "401": {$ref: "#/components/responses/Error"}
        "403": {$ref: "#/components/responses/Error"}
        "404": {$ref: "#/components/responses/Error"}
        "409": {$ref: "#/components/responses/Error"}
  /api/v1/entries/{key}/reject:
    post: *review
  /api/v1/approvals:
    get:
      summary: Entries waiting for a manager's review.
      security: [{bearer: []}]
      parameters:
        - {name: contract, in: query, schema: {type: string}}
      responses:
        "200": {description: Pending entries.}
        "401": {$ref: "#/components/responses/Error"}
        "403": {$ref: "#/components/responses/Error"}
  /api/v1/audit:
    get:
      summary: Who changed which entry, when and why.
      security: [{bearer: []}]
      parameters:
        - {name: ticket, in: query, schema: {type: integer}}
        - {name: contract, in: query, schema: {type: string}}
      responses:
        "200": {description: Audit records.}
        "401": {$ref: "#/components/responses/Error"}
        "403": {$ref: "#/components/responses/Error"}
  /api/v1/alerts:
    get:
      summary: Fired contract alerts and their deliveries.
      description: |
        Each alert has `kind`: `threshold` (the period's key and its threshold) or `untimed`, a ticket solved or closed
        with no time (`alerts: { untimed: true }`), with `period_key` `untimed:<ticket id>`, threshold 0 and the ticket in
        `ticket_id`.
      security: [{bearer: []}]
      parameters:
        - {name: contract, in: query, schema: {type: string}}
        - {name: limit, in: query, schema: {type: integer, minimum: 1, maximum: 1000, default: 100}}
      responses:
        "200": {description: Alerts, newest first.}
        "400": {$ref: "#/components/responses/Error"}
        "401": {$ref: "#/components/responses/Error"}
  /api/v1/reports/{kind}:
    get:
      summary: Technician, contract, ticket, type, category, block or untimed-ticket reports over a date range (manager role).
      security: [{bearer: []}]
      parameters:
        - {name: kind, in: path, required: true, schema: {type: string, enum: [technicians, contracts, tickets, types, categories, blocks, untimed]}}
        - {name: from, in: query, schema: {type: string, format: date}}
        - {name: to, in: query, schema: {type: string, format: date}}
        - {name: timezone, in: query, schema: {type: string, default: UTC}}
        - {name: contract, in: query, schema: {type: string}}
        - $ref: "#/components/parameters/format"
      responses:
        "200": {description: The report, as JSON or CSV.}
        "400": {$ref: "#/components/responses/Error"}
        "401": {$ref: "#/components/responses/Error"}
        "403": {$ref: "#/components/responses/Error"}
        "404": {$ref: "#/components/responses/Error"}
  /webhooks/glpi:
    post:
      summary: A GLPI 11 webhook (Ticket or TicketTask, any event) - a hint that the ticket changed.
      description: |
        Sent by GLPI with no Content-Type. `X-GLPI-signature` is hex HMAC-SHA256 of the raw body followed by
        `X-GLPI-timestamp`, keyed with the webhook's secret. The ticket id is stored durably before the 200;
        the next sync re-reads the ticket through the API. Nothing else in the body is applied.
      parameters:
        - {name: X-GLPI-signature, in: header, required: true, schema: {type: string, pattern: "^[0-9a-f]{64}$"}}
        - {name: X-GLPI-timestamp, in: header, required: true, schema: {type: string, pattern: "^[0-9]+$"}}
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              required: [item, event]
              properties:
                item:
                  type: object
                  required: [id]
                  properties:
                    id: {type: integer}
                    tickets_id: {type: integer, description: Set on a TicketTask; its ticket is the one re-read.}
                event: {type: string, enum: [new, update, delete]}
                parent_item: {type: object}
      responses:
        "200":
          description: Stored (or valid but not about a ticket, with `reason`).
          content:
            application/json:
              schema: {$ref: "#/components/schemas/WebhookAccepted"}
        "400": {description: The body is not JSON or has no item id.}
        "401": {description: Missing or wrong signature (no configured secret produced it).}
        "403": {description: The timestamp is outside the allowed window.}
        "404": {description: The GLPI webhook is not enabled on this daemon.}
        "409": {description: A replay - this signature was already received.}
        "413": {description: The body is over the size limit.}
    get:
      summary: GLPI's CRA challenge.
      parameters:
        - {name: crc_token, in: query, required: true, schema: {type: string}}
      responses:
        "200":
          description: hex(HMAC-SHA256(crc_token, secret)), exactly 64 characters, nothing around them.
          content:
            text/plain: {schema: {type: string}}
        "400": {description: No crc_token.}
        "401": {description: The token was not made with any configured secret.}
        "404": {description: The GLPI webhook is not enabled on this daemon.}
  /webhooks/itop:
    post:
      summary: An iTop webhook - a hint that a ticket changed.
      parameters:
        - {name: X-HourLedger-Token, in: header, schema: {type: string}}
        - {name: token, in: query, schema: {type: string}}
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              required: [id]
              properties:
                id: {type: string}
                class: {type: string}
      responses:
        "202":
          description: Stored.
          content:
            application/json:
              schema: {$ref: "#/components/schemas/WebhookAccepted"}
        "400": {$ref: "#/components/responses/Error"}
        "401": {$ref: "#/components/responses/Error"}
        "404": {$ref: "#/components/responses/Error"}
        "413": {$ref: "#/components/responses/Error"}
"""#
}
