import Mustache

/// The dashboard's pages as Mustache templates. `{{…}}` escapes HTML; only the server-drawn chart is inserted raw.
/// Each page extends `layout`, which holds the header, the navigation, the running-timer bar and the messages.
enum DashboardTemplates {
    static let library: MustacheLibrary = {
        var library = MustacheLibrary()
        for (name, text) in sources {
            do { try library.register(text, named: name) } catch { preconditionFailure("dashboard template \(name): \(error)") }
        }
        return library
    }()

    static let sources: [String: String] = [
        "layout": layout, "sign-in": signIn, "contracts": contracts, "contract": contract, "ticket": ticket, "work": work,
        "approvals": approvals, "alerts": alerts, "unmatched": unmatched, "outbox": outbox, "reports": reports, "message": message,
        "card": card, "contractCard": contractCard, "csrf": csrf,
    ]

    static let csrf = #"<input type="hidden" name="csrf" value="{{csrf}}">"#

    static let layout = #"""
    <!doctype html>
    <html lang="{{lang}}">
    <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>{{title}} · HourLedger</title>
    <link rel="stylesheet" href="/assets/dashboard.css">
    <script src="/assets/dashboard.js" defer></script>
    </head>
    <body>
    <a class="skip" href="#main">{{t.skip}}</a>
    <header class="top">
    <a class="brand" href="/">HourLedger</a>
    {{#viewer}}
    <nav aria-label="{{t.menu}}"><ul>
    <li><a href="/contracts"{{#nav.contracts}} aria-current="page"{{/nav.contracts}}>{{t.contracts}}</a></li>
    {{#isStaff}}<li><a href="/work"{{#nav.work}} aria-current="page"{{/nav.work}}>{{t.myWork}}</a></li>{{/isStaff}}
    {{#isManager}}
    <li><a href="/approvals"{{#nav.approvals}} aria-current="page"{{/nav.approvals}}>{{t.approvals}}</a></li>
    <li><a href="/alerts"{{#nav.alerts}} aria-current="page"{{/nav.alerts}}>{{t.alerts}}</a></li>
    <li><a href="/unmatched"{{#nav.unmatched}} aria-current="page"{{/nav.unmatched}}>{{t.unmatched}}</a></li>
    <li><a href="/outbox"{{#nav.outbox}} aria-current="page"{{/nav.outbox}}>{{t.outbox}}</a></li>
    <li><a href="/reports"{{#nav.reports}} aria-current="page"{{/nav.reports}}>{{t.reports}}</a></li>
    {{/isManager}}
    </ul></nav>
    <form method="post" action="/sign-out" class="who">{{> csrf}}<span class="name" id="viewer-name">{{name}}</span> <button type="submit">{{t.signOut}}</button></form>
    {{/viewer}}
    </header>
    {{#hasTimers}}
    <aside class="timerbar" aria-label="{{t.myTimers}}">
    {{#timerBar}}<a href="/work#timer-{{id}}" class="timer-chip {{status}}">#{{ticket}} <span class="elapsed" data-elapsed="{{elapsed}}" data-running="{{running}}">{{elapsedText}}</span> <span class="state">{{statusText}}</span></a>{{/timerBar}}
    </aside>
    {{/hasTimers}}
    <main id="main">
    {{#notice}}<p class="notice" role="status">{{notice}}</p>{{/notice}}
    {{#error}}<p class="error" role="alert" id="page-error">{{error}}</p>{{/error}}
    {{$main}}{{/main}}
    </main>
    </body>
    </html>
    """#

    static let signIn = #"""
    {{<layout}}{{$main}}
    <div class="narrow">
    <h1>{{t.signInTitle}}</h1>
    <p>{{signInHelp}}</p>
    <form method="post" action="/sign-in" class="stack">
    {{> csrf}}<input type="hidden" name="next" value="{{next}}">
    <label for="login">{{t.login}}</label>
    <input id="login" name="login" autocomplete="username" required maxlength="255" value="{{login}}" autofocus>
    <label for="password">{{t.password}}</label>
    <input id="password" name="password" type="password" autocomplete="current-password" required maxlength="1024">
    <button type="submit">{{t.signIn}}</button>
    </form>
    </div>
    {{/main}}{{/layout}}
    """#

    static let card = #"""
    <dl class="figures">
    {{#isBlock}}
    <div><dt>{{t.quota}}</dt><dd class="quota">{{quota}}</dd></div>
    <div><dt>{{t.carriedIn}}</dt><dd class="carried">{{carriedIn}}</dd></div>
    {{#topUp}}<div><dt>{{t.topUp}}</dt><dd class="topup">{{topUp}}</dd></div>{{/topUp}}
    {{/isBlock}}
    <div><dt>{{t.used}}</dt><dd class="used">{{used}}</dd></div>
    {{#isBlock}}
    <div><dt>{{t.remaining}}</dt><dd class="remaining">{{remaining}}</dd></div>
    <div><dt>{{t.percentUsed}}</dt><dd class="percent">{{percent}}</dd></div>
    {{/isBlock}}
    {{^isBlock}}<div><dt>{{t.billing}}</dt><dd class="billing">{{billingText}}</dd></div>{{/isBlock}}
    {{#expiring}}<div><dt>{{t.expiring}}</dt><dd class="expiring">{{expiring}}</dd></div>{{/expiring}}
    {{#forecast}}<div><dt>{{t.forecast}}</dt><dd class="forecast">{{forecast}}</dd></div>{{/forecast}}
    </dl>
    {{#isBlock}}<meter min="0" max="100" low="75" high="90" optimum="0" value="{{percentValue}}" aria-label="{{t.percentUsed}}">{{percent}}</meter>{{/isBlock}}
    {{{chart}}}
    """#

    /// One card of `/contracts`, rendered on its own so it can be kept (see `KeptCards`).
    static let contractCard = #"""
    <li class="card" data-contract="{{id}}">
    <h2><a href="/contracts/{{id}}">{{name}}</a></h2>
    <p class="period">{{period}}</p>
    {{> card}}
    </li>
    """#

    static let contracts = #"""
    {{<layout}}{{$main}}
    <h1>{{t.contracts}}</h1>
    {{^cards}}<p>{{t.noContracts}}</p>{{/cards}}
    <ul class="cards">
    {{#cards}}
    {{{html}}}
    {{/cards}}
    </ul>
    {{#paging}}
    <nav class="paging" aria-label="{{t.pages}}"><p>{{shown}}</p>
    {{#previous}}<a rel="prev" href="{{previous}}">{{t.previousPage}}</a>{{/previous}}
    {{#next}}<a rel="next" href="{{next}}">{{t.nextPage}}</a>{{/next}}
    </nav>
    {{/paging}}
    {{/main}}{{/layout}}
    """#

    static let contract = #"""
    {{<layout}}{{$main}}
    <nav class="crumbs" aria-label="{{t.breadcrumb}}"><a href="/contracts">{{t.contracts}}</a> › <span>{{name}}</span></nav>
    <h1>{{name}}</h1>
    <p class="period">{{period}} <span class="tz">({{timezone}})</span></p>
    <section class="card wide" data-contract="{{id}}">{{> card}}</section>
    <section aria-labelledby="tickets-h">
    <h2 id="tickets-h">{{t.tickets}}</h2>
    <p><a class="button" href="/contracts/{{id}}/tickets.csv?period={{periodKey}}" download>{{t.downloadCSV}}</a></p>
    {{^tickets}}<p>{{t.noTickets}}</p>{{/tickets}}
    {{#hasTickets}}
    <div class="scroll"><table id="tickets">
    <thead><tr><th scope="col">{{t.ticket}}</th><th scope="col">{{t.subject}}</th><th scope="col" class="num">{{t.hours}}</th><th scope="col">{{t.lastWork}}</th><th scope="col">{{t.status}}</th></tr></thead>
    <tbody>
    {{#tickets}}<tr data-ticket="{{ticketID}}"><td><a href="/contracts/{{contractID}}/tickets/{{ticketID}}?period={{periodKey}}">#{{ticketID}}</a></td><td>{{name}}</td><td class="num">{{used}}</td><td>{{lastWork}}</td><td>{{status}}</td></tr>{{/tickets}}
    </tbody>
    <tfoot><tr><th scope="row" colspan="2">{{t.total}}</th><td class="num">{{used}}</td><td colspan="2"></td></tr></tfoot>
    </table></div>
    {{/hasTickets}}
    </section>
    {{#hasPeriods}}
    <section aria-labelledby="periods-h">
    <h2 id="periods-h">{{t.periods}}</h2>
    <ul class="periods">{{#periods}}<li>{{#current}}<strong>{{label}}</strong>{{/current}}{{^current}}<a href="/contracts/{{contractID}}?period={{key}}">{{label}}</a>{{/current}} · {{used}} / {{available}}</li>{{/periods}}</ul>
    </section>
    {{/hasPeriods}}
    {{#topUps}}
    <section aria-labelledby="topups-h">
    <h2 id="topups-h">{{t.topUps}}</h2>
    <p>{{t.topUpsHelp}}</p>
    {{^hasTopUps}}<p>{{t.noTopUps}}</p>{{/hasTopUps}}
    {{#hasTopUps}}
    <div class="scroll"><table id="top-ups">
    <thead><tr><th scope="col">{{t.topUpAdded}}</th><th scope="col" class="num">{{t.hours}}</th><th scope="col">{{t.topUpWhat}}</th><th scope="col">{{t.topUpUsableThrough}}</th><th scope="col">{{t.status}}</th></tr></thead>
    <tbody>{{#list}}<tr data-top-up="{{id}}"><td>{{added}}</td><td class="num">{{hours}}</td><td>{{note}}</td><td>{{expires}}</td><td>{{#voided}}{{t.topUpVoided}} {{voided}}: {{voidReason}}{{/voided}}{{^voided}}<form method="post" action="/contracts/{{contractID}}/top-ups/{{id}}/void">{{> csrf}}<label>{{t.reason}} <input name="reason" required maxlength="500"></label> <button type="submit">{{t.topUpVoid}}</button></form>{{/voided}}</td></tr>{{/list}}</tbody>
    </table></div>
    {{/hasTopUps}}
    <form method="post" action="/contracts/{{id}}/top-ups" id="top-up-form" class="inline">{{> csrf}}
    <label>{{t.hours}} <input name="hours" required inputmode="decimal" placeholder="10" size="6"></label>
    <label>{{t.topUpNote}} <input name="note" required maxlength="200" placeholder="PO 4711"></label>
    <label>{{t.topUpExpires}} <input name="expires" type="date"></label>
    <label>{{t.topUpPrice}} <input name="price" inputmode="decimal" size="10" placeholder="{{currency}}"></label>
    <button type="submit">{{t.topUpAdd}}</button>
    </form>
    </section>
    {{/topUps}}
    {{#invoice}}
    <section aria-labelledby="invoice-h">
    <h2 id="invoice-h">{{t.invoicePreview}}</h2>
    {{#partial}}<p>{{t.partialInvoice}}</p>{{/partial}}
    <div class="scroll"><table id="invoice">
    <thead><tr><th scope="col">{{t.line}}</th><th scope="col" class="num">{{t.hours}}</th><th scope="col" class="num">{{t.rate}}</th><th scope="col" class="num">{{t.amount}}</th></tr></thead>
    <tbody>{{#lines}}<tr><td>{{description}}</td><td class="num">{{hours}}</td><td class="num">{{rate}}</td><td class="num">{{amount}}</td></tr>{{/lines}}</tbody>
    <tfoot><tr><th scope="row" colspan="3">{{t.total}}</th><td class="num" id="invoice-total">{{total}}</td></tr></tfoot>
    </table></div>
    </section>
    {{/invoice}}
    {{/main}}{{/layout}}
    """#

    static let ticket = #"""
    {{<layout}}{{$main}}
    <nav class="crumbs" aria-label="{{t.breadcrumb}}"><a href="/contracts">{{t.contracts}}</a> › <a href="/contracts/{{contractID}}?period={{periodKey}}">{{contractName}}</a> › <span>#{{ticketID}}</span></nav>
    <h1>#{{ticketID}} {{ticketName}}</h1>
    <p>{{status}} · {{period}}</p>
    <div class="scroll"><table id="entries">
    <thead><tr><th scope="col">{{t.date}}</th><th scope="col" class="num">{{t.hours}}</th><th scope="col" class="num">{{t.raw}}</th><th scope="col">{{t.kind}}</th>{{#isStaff}}<th scope="col">{{t.note}}</th>{{/isStaff}}</tr></thead>
    <tbody>{{#entries}}<tr><td>{{date}}</td><td class="num">{{billed}}</td><td class="num">{{raw}}</td><td>{{kind}}</td>{{#isStaff}}<td>{{note}}</td>{{/isStaff}}</tr>{{/entries}}</tbody>
    <tfoot><tr><th scope="row">{{t.total}}</th><td class="num">{{used}}</td><td colspan="3"></td></tr></tfoot>
    </table></div>
    {{/main}}{{/layout}}
    """#

    static let work = #"""
    {{<layout}}{{$main}}
    <h1>{{t.myWork}}</h1>
    <section aria-labelledby="timers-h">
    <h2 id="timers-h">{{t.myTimers}}</h2>
    {{^timers}}<p>{{t.noTimers}}</p>{{/timers}}
    <ul class="timers">
    {{#timers}}
    <li id="timer-{{id}}" class="timer {{status}}" data-timer="{{id}}" data-ticket="{{ticket}}">
    <p><strong>#{{ticket}}</strong> {{ticketName}} <span class="elapsed" data-elapsed="{{elapsed}}" data-running="{{running}}">{{elapsedText}}</span> <span class="state">{{statusText}}</span></p>
    <div class="actions">
    {{#running}}<form method="post" action="/work/timers/{{id}}/pause">{{> csrf}}<button type="submit" class="pause">{{t.pause}}</button></form>{{/running}}
    {{#paused}}<form method="post" action="/work/timers/{{id}}/resume">{{> csrf}}<button type="submit" class="resume">{{t.resume}}</button></form>{{/paused}}
    </div>
    <details class="stop"><summary>{{t.stop}}</summary>
    <form method="post" action="/work/timers/{{id}}/stop" class="stack">{{> csrf}}
    <label for="note-{{id}}">{{t.note}}</label><textarea id="note-{{id}}" name="note" required maxlength="10000" rows="3"></textarea>
    <fieldset><legend>{{t.kind}}</legend>
    <label><input type="radio" name="kind" value="billable" checked> {{t.billable}}</label>
    <label><input type="radio" name="kind" value="internal"> {{t.internal}}</label>
    <label><input type="radio" name="kind" value="prepaid"> {{t.prepaid}}</label>
    </fieldset>
    <label for="service-{{id}}">{{serviceLabel}}</label><input id="service-{{id}}" name="category" inputmode="numeric" pattern="[0-9]*" maxlength="10">
    <button type="submit">{{t.stopAndSave}}</button>
    </form></details>
    </li>
    {{/timers}}
    </ul>
    <form method="post" action="/work/timers" class="inline" id="start-timer">{{> csrf}}
    <label for="start-ticket">{{t.ticketNumber}}</label><input id="start-ticket" name="ticket" inputmode="numeric" pattern="[0-9]*" required maxlength="10">
    <button type="submit">{{t.startTimer}}</button>
    </form>
    </section>
    <section aria-labelledby="manual-h">
    <h2 id="manual-h">{{t.manualEntry}}</h2>
    <form method="post" action="/work/entries" class="stack" id="manual-entry">{{> csrf}}
    <label for="entry-ticket">{{t.ticketNumber}}</label><input id="entry-ticket" name="ticket" inputmode="numeric" pattern="[0-9]*" required maxlength="10">
    <label for="entry-day">{{t.date}}</label><input id="entry-day" name="day" type="date" required value="{{today}}">
    <label for="entry-time">{{t.startTime}}</label><input id="entry-time" name="time" type="time" required value="09:00">
    <label for="entry-duration">{{t.durationHint}}</label><input id="entry-duration" name="duration" required pattern="[0-9]{1,3}:[0-5][0-9]" placeholder="1:30" maxlength="6">
    <label for="entry-kind">{{t.kind}}</label><select id="entry-kind" name="kind"><option value="billable">{{t.billable}}</option><option value="internal">{{t.internal}}</option><option value="prepaid">{{t.prepaid}}</option></select>
    <label for="entry-note">{{t.note}}</label><textarea id="entry-note" name="note" maxlength="10000" rows="3"></textarea>
    <label for="entry-service">{{serviceLabel}}</label><input id="entry-service" name="category" inputmode="numeric" pattern="[0-9]*" maxlength="10">
    <button type="submit">{{t.logEntry}}</button>
    </form>
    </section>
    <section aria-labelledby="week-h">
    <h2 id="week-h">{{t.thisWeek}}</h2>
    {{^week}}<p>{{t.noEntries}}</p>{{/week}}
    {{#hasWeek}}
    <div class="scroll"><table id="week">
    <thead><tr><th scope="col">{{t.date}}</th><th scope="col">{{t.ticket}}</th><th scope="col" class="num">{{t.hours}}</th><th scope="col">{{t.kind}}</th><th scope="col">{{t.approval}}</th><th scope="col">{{t.helpdesk}}</th><th scope="col">{{t.note}}</th></tr></thead>
    <tbody>{{#week}}<tr><td>{{date}}</td><td>#{{ticket}}</td><td class="num">{{billed}}</td><td>{{kind}}</td><td>{{approval}}</td><td class="helpdesk">{{helpdesk}}</td><td>{{note}}</td></tr>{{/week}}</tbody>
    <tfoot><tr><th scope="row" colspan="2">{{t.total}}</th><td class="num">{{weekTotal}}</td><td colspan="4"></td></tr></tfoot>
    </table></div>
    {{/hasWeek}}
    </section>
    <section aria-labelledby="flagged-h">
    <h2 id="flagged-h">{{t.forgottenTimers}}</h2>
    {{^flagged}}<p>{{t.noForgotten}}</p>{{/flagged}}
    <ul>{{#flagged}}<li><a href="#timer-{{id}}">#{{ticket}}</a> {{elapsedText}} · {{why}}</li>{{/flagged}}</ul>
    </section>
    {{/main}}{{/layout}}
    """#

    static let approvals = #"""
    {{<layout}}{{$main}}
    <h1>{{t.approvals}}</h1>
    {{^pending}}<p>{{t.noPending}}</p>{{/pending}}
    <ul class="rows">
    {{#pending}}
    <li class="row" data-entry="{{key}}">
    <p><strong>#{{ticket}}</strong> {{contract}} · {{date}} · {{billed}} ({{raw}}) · {{kind}} · {{t.by}} {{technician}}</p>
    <p class="note">{{note}}</p>
    <form method="post" action="/approvals/{{key}}" class="inline">{{> csrf}}
    <label for="review-{{id}}">{{t.reviewNote}}</label><input id="review-{{id}}" name="note" maxlength="2000">
    <button type="submit" name="decision" value="approve" class="approve">{{t.approve}}</button>
    <button type="submit" name="decision" value="reject" class="reject">{{t.reject}}</button>
    </form>
    </li>
    {{/pending}}
    </ul>
    {{/main}}{{/layout}}
    """#

    static let alerts = #"""
    {{<layout}}{{$main}}
    <h1>{{t.alerts}}</h1>
    {{^alerts}}<p>{{t.noAlerts}}</p>{{/alerts}}
    {{#hasAlerts}}
    <div class="scroll"><table id="alerts">
    <thead><tr><th scope="col">{{t.date}}</th><th scope="col">{{t.contract}}</th><th scope="col">{{t.period}}</th><th scope="col" class="num">{{t.threshold}}</th><th scope="col" class="num">{{t.used}}</th><th scope="col">{{t.forecast}}</th></tr></thead>
    <tbody>{{#alerts}}<tr><td>{{date}}</td><td><a href="/contracts/{{contractID}}">{{contract}}</a></td><td>{{period}}</td><td class="num">{{threshold}}</td><td class="num">{{used}}</td><td>{{forecast}}</td></tr>{{/alerts}}</tbody>
    </table></div>
    {{/hasAlerts}}
    {{/main}}{{/layout}}
    """#

    static let unmatched = #"""
    {{<layout}}{{$main}}
    <h1>{{t.unmatched}}</h1>
    {{^tickets}}<p>{{t.noUnmatched}}</p>{{/tickets}}
    {{#hasTickets}}
    <div class="scroll"><table id="unmatched">
    <thead><tr><th scope="col">{{t.ticket}}</th><th scope="col">{{t.subject}}</th><th scope="col" class="num">{{t.hours}}</th><th scope="col">{{t.reason}}</th></tr></thead>
    <tbody>{{#tickets}}<tr><td>#{{ticketID}} {{ref}}</td><td>{{name}}</td><td class="num">{{raw}}</td><td>{{reason}}</td></tr>{{/tickets}}</tbody>
    </table></div>
    {{/hasTickets}}
    {{/main}}{{/layout}}
    """#

    static let outbox = #"""
    {{<layout}}{{$main}}
    <h1>{{t.outbox}}</h1>
    <p>{{t.outboxHelp}}</p>
    {{^items}}<p>{{t.noOutbox}}</p>{{/items}}
    <ul class="rows">
    {{#items}}
    <li class="row {{state}}" data-outbox="{{id}}">
    <p><strong>#{{ticket}}</strong> {{action}} · {{stateText}} · {{t.attempts}} {{attempts}} · {{created}}</p>
    {{#lastError}}<p class="note">{{lastError}}</p>{{/lastError}}
    <form method="post" action="/outbox/{{id}}/retry" class="inline">{{> csrf}}<button type="submit" class="retry">{{t.retry}}</button></form>
    <form method="post" action="/outbox/{{id}}/discard" class="inline">{{> csrf}}
    <label for="discard-{{id}}">{{t.reason}}</label><input id="discard-{{id}}" name="reason" required maxlength="2000">
    <button type="submit" class="discard">{{t.discard}}</button></form>
    </li>
    {{/items}}
    </ul>
    {{/main}}{{/layout}}
    """#

    static let reports = #"""
    {{<layout}}{{$main}}
    <h1>{{t.reports}}</h1>
    <form method="get" action="/reports" class="inline">
    <label for="report-kind">{{t.report}}</label><select id="report-kind" name="kind">{{#kinds}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{label}}</option>{{/kinds}}</select>
    <label for="report-from">{{t.from}}</label><input id="report-from" name="from" type="date" value="{{from}}" required>
    <label for="report-to">{{t.to}}</label><input id="report-to" name="to" type="date" value="{{to}}" required>
    <button type="submit">{{t.show}}</button>
    </form>
    <p><a class="button" href="/reports.csv?kind={{kind}}&amp;from={{from}}&amp;to={{to}}" download>{{t.downloadCSV}}</a></p>
    {{^rows}}<p>{{t.noData}}</p>{{/rows}}
    {{#hasRows}}
    <div class="scroll"><table id="report">
    <thead><tr>{{#header}}<th scope="col">{{.}}</th>{{/header}}</tr></thead>
    <tbody>{{#rows}}<tr>{{#cells}}<td>{{.}}</td>{{/cells}}</tr>{{/rows}}</tbody>
    </table></div>
    {{/hasRows}}
    {{/main}}{{/layout}}
    """#

    static let message = #"""
    {{<layout}}{{$main}}
    <h1>{{heading}}</h1>
    <p>{{text}}</p>
    <p><a href="/">{{t.home}}</a></p>
    {{/main}}{{/layout}}
    """#
}
