// The session_lifecycle fuzz target (see targets.hpp): SessionLifecycle, RequestTable and
// CallTable (framework/src/detail) driven together the way SessionImpl drives them (session.cpp
// apply / check_drained, session_reader.cpp, session_calls.cpp, session_handlers.cpp), from an
// event program, and checked against a model of the transitions session_lifecycle.hpp documents
// and of the tables' contents.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <memory_resource>
#include <optional>
#include <set>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "detail/call_table.hpp"
#include "detail/request_table.hpp"
#include "detail/session_lifecycle.hpp"
#include "fuzz_support.hpp"
#include "sdmp/error.hpp"
#include "sdmp/framework/error.hpp"
#include "targets.hpp"

namespace sdmp::fuzz {

namespace {

using detail::CallTable;
using detail::RequestTable;
using detail::SessionLifecycle;
using Actions = SessionLifecycle::Actions;
using Admission = RequestTable::Admission;
using State = SessionLifecycle::State;

constexpr std::uint64_t k_max_id = std::numeric_limits<std::uint64_t>::max();

// Event opcodes (the input byte modulo 16). "Peer" events are what the reader dispatches: none
// once it stopped (read_ended delivered, or the session aborted), and any after the peer's `end`
// makes the reader stop with `malformed` instead (session_reader.cpp), as a duplicate request id
// aborts the session.
enum Op : std::uint8_t {
    op_request,           // [sel size] peer: a request (id: request_id(sel); size: size_of)
    op_notification,      // [size]     peer: a notification
    op_finish,            // [index]    a handler finishes (bit 7: its entry is removed twice)
    op_finish_cancelled,  // []         every cancelled handler finishes
    op_cancel,            // [sel]      peer: cancel for request_id(sel)
    op_call,              // []         we start a call (as start_call: refused without an id
                          //            unless sending, before the peer's goaway or end)
    op_response,          // [sel]      peer: a response for call_id(sel)
    op_call_done,         // [sel]      a call of ours ends here (deadline, caller cancelled)
    op_goaway,            // [sel]      peer: goaway (last id: goaway_last(sel))
    op_close,             // []         close(): the application, the server or the idle timeout
    op_peer_end,          // []         peer: end
    op_drain_timer,       // []         the drain timer fires, if armed
    op_abort,             // [reason]   abort(reason_code(reason))
    op_read_ended,        // [flags]    the reader stops: bit 0 eof, bit 1 record incomplete,
                          //            bits 2-4 reason_code (once; nothing if it already did)
    op_waiter,            // [flags]    bit 0: a sender waits for queue space (when sending),
                          //            else one waiting is granted
    op_probe,             // [flags]    events that must do nothing now; bit 0: finished() when
                          //            the session would call it
};

// Reasons for abort() and read_ended(): index % 6.
std::error_code reason_code(std::uint8_t i) {
    switch (i % 6) {
        case 0:
            return {};
        case 1:
            return errc::malformed;
        case 2:
            return framework_errc::queue_full;
        case 3:
            return framework_errc::connection_lost;
        case 4:
            return std::make_error_code(std::errc::timed_out);
        default:
            return errc::counter_exhausted;
    }
}

std::uint64_t saturating_add(std::uint64_t a, std::uint64_t b) {
    return a > k_max_id - b ? k_max_id : a + b;
}

std::string_view state_name(State s) {
    switch (s) {
        case State::open:
            return "open";
        case State::draining:
            return "draining";
        case State::closing:
            return "closing";
        case State::closed:
            return "closed";
    }
    return "?";
}

int rank(State s) {
    return static_cast<int>(s);
}

// Config: byte 0 bits 0-3 max_in_flight (0-15), bits 4-5 max_message_size 64 << 2n; byte 1 the
// call ids already used: bit 7 set, 2^64 - 1 minus bits 0-6, else bits 0-6.
struct Config {
    RequestTable::Limits limits;
    std::uint64_t ids_used = 0;
};

Config read_config(Cursor& c) {
    const std::uint8_t a = c.byte();
    const std::uint8_t b = c.byte();
    Config cfg;
    cfg.limits.max_in_flight = a & 0x0fu;
    cfg.limits.max_message_size = std::size_t{64} << (2 * ((a >> 4) & 0x03u));
    cfg.ids_used = (b & 0x80u) != 0 ? k_max_id - (b & 0x7fu) : b & 0x7fu;
    return cfg;
}

// A handler of the peer's request (request_id >= 1) or notification, in the table's list.
struct Task : RequestTable::Entry {
    std::optional<Status> cancelled;  // the first cancellation reason (cancel_task keeps it)
    bool finished = false;
};

struct Call {
    std::uint64_t id = 0;
    bool done = false;
};
using CallPtr = std::shared_ptr<Call>;

enum class Event { close, peer_end, drain_deadline, drained, abort, read_ended };

struct EventArgs {
    std::error_code reason;  // abort, read_ended
    bool eof = false;
    bool incomplete = false;
};

EventArgs because(std::error_code reason) {
    EventArgs args;
    args.reason = reason;
    return args;
}

EventArgs stream_end(bool eof, bool incomplete, std::error_code reason) {
    EventArgs args;
    args.reason = reason;
    args.eof = eof;
    args.incomplete = incomplete;
    return args;
}

struct Snapshot {
    State state;
    bool aborted;
    bool peer_ended;
    std::error_code reason;
};

class Driver {
  public:
    explicit Driver(const Config& cfg)
        : limits_(cfg.limits),
          requests_(cfg.limits, &pool_),
          calls_(&pool_, cfg.ids_used),
          last_id_(cfg.ids_used) {}

    void run(Cursor& c) {
        while (!c.done()) {
            step(static_cast<Op>(c.byte() % 16), c);
            check_drained();
            check();
        }
    }

    // The session ends as SessionImpl::run() ends it: the application closes, the drain timer
    // fires, every handler finishes (cancelled or not), the peer ends its stream, and once the
    // reader, the handlers and the writer are done, finished().
    void wind_down() {
        event(Event::close);
        if (timer_armed_)
            fire_drain_timer();
        check();
        finish_tasks(true);
        finish_tasks(false);
        // None is left after the drain deadline; without a drain timer, the calls end by their
        // own deadline or the caller.
        while (!pending_.empty()) {
            call_done(0);     // the first pending call, its own pointer
            check_drained();  // posted by finish_call
        }
        require(lc_.state() == State::closing || lc_.state() == State::closed,
                "the session did not reach closing once nothing was in flight after a close");
        if (!reader_done_) {
            const bool aborted = lc_.aborted();
            if (!aborted && !lc_.peer_ended())
                event(Event::peer_end);
            reader_done_ = true;
            event(Event::read_ended, stream_end(true, false, {}));
            require(lc_.aborted() == aborted, "the peer's end then end of stream aborted");
        }
        check();
        require(requests_.empty() && calls_.empty() && writer_finishing_,
                "the session cannot finish: handlers or calls left, or the writer not finishing");
        if (lc_.state() != State::closed)
            lc_.finished();
        require(lc_.state() == State::closed, "finished() did not close the session");
        check();
    }

    SessionLifecycleCounts counts() const {
        SessionLifecycleCounts out = counts_;
        out.aborted = lc_.aborted();
        out.peer_ended = lc_.peer_ended();
        out.state = state_name(lc_.state());
        out.reason = lc_.reason();
        return out;
    }

  private:
    // --------------------------------------------------------------------------- events

    void step(Op op, Cursor& c) {
        switch (op) {
            case op_request: {
                const std::uint8_t sel = c.byte();
                const std::uint8_t size = c.byte();
                if (peer_message())
                    on_request(request_id(sel), size_of(size), (size & 0x80u) == 0);
                return;
            }
            case op_notification: {
                const std::uint8_t size = c.byte();
                if (peer_message())
                    on_notification(size_of(size), (size & 0x80u) == 0);
                return;
            }
            case op_finish: {
                const std::uint8_t i = c.byte();
                if (unfinished_.empty())
                    return;
                Task& task = *unfinished_[(i & 0x7fu) % unfinished_.size()];
                finish(task);
                if ((i & 0x80u) != 0) {
                    requests_.remove(task);
                    require(requests_.size() == unfinished_.size(),
                            "removing an entry twice changed the table");
                }
                return;
            }
            case op_finish_cancelled:
                finish_tasks(true);
                return;
            case op_cancel: {
                const std::uint64_t id = request_id(c.byte());
                if (peer_message())
                    on_cancel(id);
                return;
            }
            case op_call:
                start_call();
                return;
            case op_response: {
                const std::uint8_t sel = c.byte();
                if (peer_message())
                    on_response(call_id(sel));
                return;
            }
            case op_call_done:
                call_done(c.byte());
                return;
            case op_goaway: {
                const std::uint8_t sel = c.byte();
                if (peer_message())
                    on_goaway(goaway_last(sel));
                return;
            }
            case op_close:
                event(Event::close);
                return;
            case op_peer_end:
                if (peer_message())
                    event(Event::peer_end);
                return;
            case op_drain_timer:
                if (timer_armed_)
                    fire_drain_timer();
                return;
            case op_abort:
                event(Event::abort, because(reason_code(c.byte())));
                return;
            case op_read_ended: {
                const std::uint8_t flags = c.byte();
                if (reader_done_)
                    return;
                reader_done_ = true;
                event(Event::read_ended, stream_end((flags & 0x01u) != 0, (flags & 0x02u) != 0,
                                                    reason_code(flags >> 2)));
                return;
            }
            case op_waiter: {
                const std::uint8_t flags = c.byte();
                if ((flags & 0x01u) != 0) {
                    if (lc_.sending())
                        ++waiters_;
                } else if (waiters_ > 0) {
                    --waiters_;
                }
                return;
            }
            case op_probe:
                probe(c.byte());
                return;
        }
    }

    // Whether the reader dispatches a message of the peer now. After the peer's `end` a
    // message ends the reader with `malformed` (session_reader.cpp).
    bool peer_message() {
        if (reader_done_ || lc_.aborted())
            return false;
        if (lc_.peer_ended()) {
            reader_done_ = true;
            event(Event::read_ended, because(errc::malformed));
            return false;
        }
        return true;
    }

    // Request ids: sel % 4 = 0 an unfinished request's (a duplicate; a fresh one when there is
    // none), 1 the highest seen + 1 + sel / 4, 2 1 + sel / 4, 3 2^64 - 1 - sel / 4.
    std::uint64_t request_id(std::uint8_t sel) const {
        const std::uint64_t n = sel >> 2;
        switch (sel & 0x03u) {
            case 0:
                if (!open_ids_.empty()) {
                    auto it = open_ids_.begin();
                    std::advance(it, static_cast<std::ptrdiff_t>(n % open_ids_.size()));
                    return it->first;
                }
                return saturating_add(highest_, 1);
            case 1:
                return saturating_add(highest_, 1 + n);
            case 2:
                return 1 + n;
            default:
                return k_max_id - n;
        }
    }

    // Envelope sizes: bits 0-6 in 64ths of max_message_size (so up to about twice it).
    std::size_t size_of(std::uint8_t s) const {
        return (s & 0x7fu) * limits_.max_message_size / 64;
    }

    // Response ids: sel % 4 = 0 a pending call's, 1 a call's that already left the table,
    // 2 the last id allocated + sel / 4, 3 sel / 4.
    std::uint64_t call_id(std::uint8_t sel) const {
        const std::uint64_t n = sel >> 2;
        switch (sel & 0x03u) {
            case 0:
                if (!pending_.empty()) {
                    auto it = pending_.begin();
                    std::advance(it, static_cast<std::ptrdiff_t>(n % pending_.size()));
                    return it->first;
                }
                return saturating_add(last_id_, 1);
            case 1:
                if (!ended_.empty())
                    return ended_[n % ended_.size()]->id;
                return n;
            case 2:
                return saturating_add(last_id_, n);
            default:
                return n;
        }
    }

    // Goaway last ids: sel % 4 = 0 the last id allocated - sel / 4, 1 sel / 4, 2 2^64 - 1,
    // 3 above the previous goaway's (which it cannot take back).
    std::uint64_t goaway_last(std::uint8_t sel) const {
        const std::uint64_t n = sel >> 2;
        switch (sel & 0x03u) {
            case 0:
                return last_id_ - std::min(n, last_id_);
            case 1:
                return n;
            case 2:
                return k_max_id;
            default:
                return saturating_add(peer_last_.value_or(last_id_), 1 + n);
        }
    }

    // session_reader.cpp on_request.
    void on_request(std::uint64_t id, std::size_t size, bool has_handler) {
        Admission expected = Admission::accept;
        highest_ = std::max(highest_, id);
        if (open_ids_.contains(id)) {
            expected = Admission::duplicate_id;
        } else if (lc_.state() != State::open) {
            expected = Admission::shutting_down;
        } else if (size > limits_.max_message_size) {
            expected = Admission::too_large;
        } else if (!has_handler) {
            expected = Admission::unknown_method;
        } else if (unfinished_.size() >= limits_.max_in_flight) {
            expected = Admission::overloaded;
        }
        const Admission got =
            requests_.admit_request(id, size, has_handler, lc_.accepts_requests());
        require(requests_.highest_request() == highest_,
                "highest_request() is not the highest request id seen");
        if (got == Admission::duplicate_id)
            require(expected == Admission::duplicate_id,
                    "a request id no unfinished request holds was taken for a duplicate");
        require(expected != Admission::duplicate_id || got == Admission::duplicate_id,
                "a request reusing an unfinished request's id was not refused as a duplicate");
        require(got != Admission::accept || lc_.state() == State::open,
                "a request was admitted while the session is not open");
        require(got == expected, "admit_request decided other than in the documented order");
        switch (got) {
            case Admission::accept:
                ++counts_.accepted;
                add_task(id);
                return;
            case Admission::duplicate_id:
                ++counts_.duplicates;
                event(Event::abort, because(errc::malformed));
                return;
            case Admission::shutting_down:
                ++counts_.shutting_down;
                [[fallthrough]];
            case Admission::too_large:
            case Admission::unknown_method:
            case Admission::overloaded:
                ++counts_.answered_now;
                return;
        }
        violated("admit_request returned no Admission");
    }

    // session_reader.cpp on_notification (a notification over max_message_size or without a
    // handler never gets here in the session; the decision is checked for them too).
    void on_notification(std::size_t size, bool has_handler) {
        // Handlers start while open, or draining before the drain deadline: later, nothing
        // would cancel them and the drain would not be bounded.
        const bool accepting =
            lc_.state() == State::open || (lc_.state() == State::draining && !timer_fired_);
        require(accepting == lc_.accepts_new_work(), "accepts_new_work() other than documented");
        const bool expected = size <= limits_.max_message_size && has_handler && accepting &&
                              unfinished_.size() < limits_.max_in_flight;
        const bool got = requests_.admit_notification(size, has_handler, accepting);
        require(got == expected, "admit_notification decided other than documented");
        if (!got || size > limits_.max_message_size || !has_handler)
            return;
        ++counts_.notifications;
        add_task(0);
    }

    void add_task(std::uint64_t id) {
        auto task = std::make_unique<Task>();
        task->request_id = id;
        requests_.add(*task);
        unfinished_.push_back(task.get());
        if (id != 0)
            open_ids_.emplace(id, task.get());
        require(
            !((lc_.state() == State::draining && timer_fired_) || lc_.state() == State::closing),
            "work admitted after the drain deadline or the drain's end: nothing cancels it");
        tasks_.push_back(std::move(task));
    }

    // session_handlers.cpp task_finished.
    void finish(Task& task) {
        require(!task.finished, "a task finished twice");
        requests_.remove(task);
        task.finished = true;
        std::erase(unfinished_, &task);
        if (task.request_id != 0)
            open_ids_.erase(task.request_id);
        require(requests_.size() == unfinished_.size(), "remove() did not take the entry out");
        check_drained();
    }

    void finish_tasks(bool cancelled_only) {
        const std::vector<Task*> now = unfinished_;
        for (Task* task : now) {
            if (!cancelled_only || task->cancelled)
                finish(*task);
        }
    }

    // session_handlers.cpp cancel_task: the first reason is kept.
    void cancel(Task& task, Status reason) {
        if (task.cancelled)
            return;
        task.cancelled = reason;
        ++counts_.cancelled_tasks;
    }

    // session_reader.cpp on_cancel.
    void on_cancel(std::uint64_t id) {
        RequestTable::Entry* entry = requests_.find(id);
        const auto it = open_ids_.find(id);
        require(entry == (it == open_ids_.end() ? nullptr : it->second),
                "find() is not the unfinished request with that id");
        if (entry != nullptr)
            cancel(static_cast<Task&>(*entry), Status::cancelled);
    }

    // session_calls.cpp start_call.
    void start_call() {
        if (!lc_.sending() || calls_.peer_went_away() || lc_.peer_ended() ||
            !lc_.accepts_new_work())
            return;
        const std::optional<std::uint64_t> id = calls_.next_id();
        if (!id) {
            require(last_id_ == k_max_id, "next_id() ran out before every id was used");
            ++counts_.ids_exhausted;
            return;
        }
        require(*id >= 1 && *id > last_id_ && (last_id_ != k_max_id),
                "call ids do not strictly increase from 1 (an id came round again)");
        last_id_ = *id;
        auto call = std::make_shared<Call>();
        call->id = *id;
        calls_.insert(*id, call);
        pending_.emplace(*id, call);
        ++counts_.calls;
        require(!timer_fired_, "a call started after the drain deadline: nothing fails it");
    }

    void ended(const CallPtr& call) {
        require(!call->done, "a call left the table twice");
        call->done = true;
        pending_.erase(call->id);
        ended_.push_back(call);
    }

    // session_calls.cpp on_response, then finish_call's take_if.
    void on_response(std::uint64_t id) {
        const CallPtr got = calls_.take(id);
        const auto it = pending_.find(id);
        const CallPtr expected = it == pending_.end() ? nullptr : it->second;
        require(got == expected, "take() did not return the pending call with that id");
        if (!got)
            return;
        require(!calls_.take(id), "take() returned an answered call twice");
        ended(got);
        ++counts_.answered;
        require(!calls_.take_if(id, got.get()), "take_if() returned a call already taken");
    }

    // session_calls.cpp finish_call for a call that ends here: sel bit 0 selects a call that
    // already left the table, bit 1 passes another call's pointer, sel / 4 indexes.
    void call_done(std::uint8_t sel) {
        const std::size_t n = sel >> 2;
        if (pending_.empty() || (sel & 0x01u) != 0) {
            if (ended_.empty())
                return;
            const CallPtr& call = ended_[n % ended_.size()];
            const std::size_t before = calls_.size();
            require(!calls_.take_if(call->id, call.get()) && calls_.size() == before,
                    "take_if() returned a call that had left the table");
            return;
        }
        auto it = pending_.begin();
        std::advance(it, static_cast<std::ptrdiff_t>(n % pending_.size()));
        const CallPtr call = it->second;
        if ((sel & 0x02u) != 0) {
            const Call other;
            const std::size_t before = calls_.size();
            require(!calls_.take_if(call->id, &other) && calls_.size() == before,
                    "take_if() took a call out for another call's pointer");
            return;
        }
        const CallPtr got = calls_.take_if(call->id, call.get());
        require(got == call, "take_if() did not return the pending call");
        ended(got);
        ++counts_.calls_done;
    }

    // session_calls.cpp on_goaway.
    void on_goaway(std::uint64_t last) {
        peer_last_ = peer_last_ ? std::min(*peer_last_, last) : last;
        std::set<const Call*> expected;
        for (const auto& [id, call] : pending_) {
            if (id > *peer_last_)
                expected.insert(call.get());
        }
        const std::vector<CallPtr> refused = calls_.on_goaway(last);
        std::set<const Call*> got;
        for (const CallPtr& call : refused) {
            require(call != nullptr && got.insert(call.get()).second,
                    "on_goaway() returned a call twice, or an empty one");
        }
        require(got == expected,
                "on_goaway() did not return exactly the pending calls above the lowest last id");
        for (const CallPtr& call : refused) {
            ended(call);
            ++counts_.refused_calls;
            require(!calls_.take_if(call->id, call.get()),
                    "take_if() returned a call on_goaway() took out");
        }
    }

    // The timer's handler in SessionImpl::apply (armed only while draining).
    void fire_drain_timer() {
        timer_armed_ = false;
        timer_fired_ = true;
        require(lc_.state() == State::draining, "the drain timer was armed outside draining");
        event(Event::drain_deadline);
        ++counts_.drain_deadlines;
    }

    // Events that must do nothing in the present state, and finished() when due.
    void probe(std::uint8_t flags) {
        if (lc_.state() != State::open)
            event(Event::close);
        if (lc_.state() != State::draining) {
            event(Event::drained);
            event(Event::drain_deadline);
        }
        if (lc_.aborted() || lc_.state() == State::closed)
            event(Event::abort, because(reason_code(flags >> 1)));
        require(!requests_.admit_notification(0, true, false),
                "admit_notification() admitted after the session ended");
        if ((flags & 0x01u) != 0 && reader_done_ && requests_.empty() && writer_finishing_ &&
            lc_.state() != State::closed) {
            require(lc_.state() == State::closing, "finished() due outside closing");
            lc_.finished();
            require(lc_.state() == State::closed, "finished() did not close the session");
        }
    }

    // --------------------------------------------------------------------------- lifecycle

    Snapshot snapshot() const {
        return {lc_.state(), lc_.aborted(), lc_.peer_ended(), lc_.reason()};
    }

    Actions deliver(Event e, const EventArgs& args) {
        switch (e) {
            case Event::close:
                return lc_.close();
            case Event::peer_end:
                return lc_.peer_end();
            case Event::drain_deadline:
                return lc_.drain_deadline();
            case Event::drained:
                return lc_.drained();
            case Event::abort:
                return lc_.abort(args.reason);
            case Event::read_ended:
                return lc_.read_ended(args.eof, args.incomplete, args.reason);
        }
        violated("unknown lifecycle event");
    }

    void event(Event e, const EventArgs& args = {}) {
        const Snapshot before = snapshot();
        const Actions actions = deliver(e, args);
        check_event(e, args, before, actions);
        apply(actions);
    }

    // The transitions of session_lifecycle.hpp and the actions each must return.
    void check_event(Event e, const EventArgs& args, const Snapshot& b, const Actions& a) const {
        const Snapshot after = snapshot();
        const auto unchanged = [&] {
            return after.state == b.state && after.aborted == b.aborted &&
                   after.peer_ended == b.peer_ended && after.reason == b.reason;
        };
        const std::error_code closed = framework_errc::connection_closed;
        require(rank(after.state) >= rank(b.state), "the lifecycle moved backwards");
        require(after.state != State::closed || b.state == State::closed,
                "an event other than finished() closed the session");
        require(!b.aborted || after.aborted, "aborted() was taken back");
        require(!b.peer_ended || after.peer_ended, "peer_ended() was taken back");
        require(!b.reason || after.reason == b.reason, "reason() changed: the first is kept");
        require(after.aborted == static_cast<bool>(after.reason),
                "reason() is not set exactly when the session aborted");
        require(
            lc_.accepts_requests() == (after.state == State::open) &&
                lc_.sending() == (after.state == State::open || after.state == State::draining) &&
                lc_.reason_or_closed() == (after.reason ? after.reason : closed),
            "the queries disagree with the state");

        const bool newly_aborted = !b.aborted && after.aborted;
        const bool to_draining = b.state == State::open && after.state == State::draining;
        const bool to_closing =
            (b.state == State::open || b.state == State::draining) && after.state == State::closing;
        require(a.close_socket == newly_aborted, "close_socket other than on an abort");
        if (newly_aborted) {
            require(after.state == State::closing, "an abort did not go to closing");
            require(a.cancel_tasks == Status::cancelled && a.fail_waiters == after.reason &&
                        a.fail_calls == after.reason && a.stop_drain_timer && a.finish_writer &&
                        !a.send_goaway && !a.arm_drain_timer && !a.start_linger,
                    "an abort's actions are not cancel, fail with the reason, stop, close, "
                    "finish");
        }
        if (to_closing) {
            require(a.fail_waiters && a.fail_calls && a.stop_drain_timer && a.finish_writer,
                    "left open or draining for closing without failing waiters and calls, "
                    "stopping the drain timer and finishing the writer");
        }
        require(!to_draining || e == Event::close || e == Event::peer_end,
                "draining began other than by close() or peer_end()");
        require(b.state != State::draining || after.state != State::closing || newly_aborted ||
                    e == Event::drained,
                "the drain ended other than by drained() or an abort");
        require(a.arm_drain_timer == to_draining, "the drain timer armed other than on draining");
        require(a.send_goaway == (to_draining && !after.peer_ended),
                "goaway sent other than when a close begins the drain before the peer's end");
        require(a.start_linger ==
                    (b.state == State::draining && after.state == State::closing && !newly_aborted),
                "linger started other than when the drain ends");
        require(a.finish_writer == (to_closing || newly_aborted),
                "finish_writer other than on entering closing or an abort");
        require(!a.stop_drain_timer || after.state == State::closing,
                "the drain timer stopped while the session goes on");
        require(!a.cancel_tasks || newly_aborted ||
                    (e == Event::drain_deadline && b.state == State::draining &&
                     *a.cancel_tasks == Status::shutting_down),
                "tasks cancelled other than on an abort or the drain deadline");

        switch (e) {
            case Event::close:
                if (b.state == State::open) {
                    require(after.state == State::draining && !after.aborted && !a.cancel_tasks &&
                                !a.fail_waiters && !a.fail_calls,
                            "close() from open did not just begin the drain");
                } else {
                    require(!a.any() && unchanged(), "close() acted outside open");
                }
                return;
            case Event::peer_end:
                require(after.peer_ended, "peer_end() did not record the peer's end");
                require(a.fail_waiters == closed && a.fail_calls == closed,
                        "peer_end() did not fail waiters and calls with connection_closed");
                require(after.state == (b.state == State::open ? State::draining : b.state) &&
                            !newly_aborted && !a.cancel_tasks,
                        "peer_end() did other than begin the drain");
                return;
            case Event::drain_deadline:
                if (b.state == State::draining) {
                    require(unchanged() && a.cancel_tasks == Status::shutting_down &&
                                a.fail_waiters == framework_errc::session_shutting_down &&
                                a.fail_calls == framework_errc::session_shutting_down &&
                                !a.send_goaway && !a.arm_drain_timer && !a.stop_drain_timer &&
                                !a.finish_writer && !a.start_linger,
                            "the drain deadline did not cancel and fail what is left");
                } else {
                    require(!a.any() && unchanged(), "drain_deadline() acted outside draining");
                }
                return;
            case Event::drained:
                if (b.state == State::draining) {
                    require(after.state == State::closing && !after.aborted &&
                                a.fail_waiters == closed && a.fail_calls == closed &&
                                !a.cancel_tasks,
                            "drained() did not go to closing failing with connection_closed");
                } else {
                    require(!a.any() && unchanged(), "drained() acted outside draining");
                }
                return;
            case Event::abort:
                if (b.aborted || b.state == State::closed) {
                    require(!a.any() && unchanged(), "abort() acted after an abort or the end");
                } else {
                    require(newly_aborted && after.reason == (args.reason ? args.reason : closed),
                            "abort() did not abort with its reason (connection_closed for none)");
                }
                return;
            case Event::read_ended:
                if (b.aborted) {
                    require(!a.any() && unchanged(), "read_ended() acted after an abort");
                } else if (args.eof && b.peer_ended && !args.incomplete) {
                    require(!a.any() && unchanged(),
                            "the peer's end, then end of stream, was not taken as graceful");
                } else if (args.eof) {
                    require(b.state == State::closed ||
                                (newly_aborted && after.reason == framework_errc::connection_lost),
                            "a cut stream did not abort with connection_lost");
                } else if (b.state == State::closing || b.state == State::closed) {
                    require(!a.any() && unchanged(), "read_ended() acted once we had finished");
                } else {
                    require(newly_aborted && after.reason == (args.reason ? args.reason : closed),
                            "a read error did not abort with it (connection_closed for none)");
                }
                require(after.state != State::open, "the reader stopped and the session is open");
                return;
        }
    }

    // SessionImpl::apply: the actions in the order Actions declares them, then check_drained.
    void apply(const Actions& a) {
        if (a.cancel_tasks) {
            std::set<const Task*> visited;
            requests_.for_each([&](RequestTable::Entry& entry) {
                auto& task = static_cast<Task&>(entry);
                require(!task.finished && visited.insert(&task).second,
                        "for_each() visited a finished entry, or one twice");
                cancel(task, *a.cancel_tasks);
            });
            require(visited.size() == unfinished_.size(),
                    "for_each() did not visit every unfinished entry");
        }
        if (a.fail_waiters)
            waiters_ = 0;
        if (a.fail_calls)
            fail_calls();
        if (a.send_goaway) {
            require(requests_.highest_request() == highest_,
                    "our goaway's last id is not the highest request id seen");
            ++counts_.goaways_sent;
        }
        if (a.arm_drain_timer) {
            require(!timer_armed_ && !timer_fired_, "the drain timer armed twice");
            timer_armed_ = true;
        }
        if (a.stop_drain_timer)
            timer_armed_ = false;
        if (a.close_socket)
            socket_closed_ = true;
        if (a.finish_writer)
            writer_finishing_ = true;
        if (a.start_linger) {
            require(!linger_started_, "the linger started twice");
            linger_started_ = true;
            counts_.drained = true;
        }
        check_drained();
    }

    // session_calls.cpp fail_pending.
    void fail_calls() {
        const auto all = calls_.take_all();
        require(calls_.empty() && calls_.size() == 0, "take_all() left calls in the table");
        std::set<const Call*> got;
        for (const auto& [id, call] : all) {
            const auto it = pending_.find(id);
            require(call != nullptr && it != pending_.end() && it->second == call &&
                        got.insert(call.get()).second,
                    "take_all() returned a call not pending under that id, or one twice");
            require(!calls_.refused(id), "a call above the peer's goaway was still in the table");
        }
        require(got.size() == pending_.size(), "take_all() did not return every pending call");
        for (const auto& [id, call] : all) {
            ended(call);
            ++counts_.failed_calls;
        }
    }

    // SessionImpl::check_drained.
    void check_drained() {
        if (lc_.state() == State::draining && requests_.empty() && calls_.empty())
            event(Event::drained);
    }

    // --------------------------------------------------------------------------- invariants

    void check() const {
        // The peer's requests.
        require(requests_.size() == unfinished_.size() && requests_.empty() == unfinished_.empty(),
                "the request table's size is not the unfinished tasks'");
        require(unfinished_.size() <= limits_.max_in_flight,
                "more than max_in_flight requests and notifications admitted");
        require(requests_.highest_request() == highest_,
                "highest_request() is not the highest request id seen");
        require(requests_.find(0) == nullptr, "find(0) found a notification");
        for (const auto& [id, task] : open_ids_) {
            require(requests_.find(id) == task, "find() lost an unfinished request");
        }
        std::size_t listed = 0;
        requests_.for_each([&](const RequestTable::Entry& entry) {
            const auto& task = static_cast<const Task&>(entry);
            require(!task.finished, "a finished task is still in the table");
            ++listed;
        });
        require(listed == unfinished_.size(), "for_each() does not list the unfinished tasks");

        // Our calls.
        require(calls_.size() == pending_.size(),
                "the call table's size is not the pending calls'");
        require(calls_.peer_went_away() == peer_last_.has_value(),
                "peer_went_away() disagrees with the goaways received");
        const auto refused = [&](std::uint64_t id) { return peer_last_ && id > *peer_last_; };
        for (const auto& [id, call] : pending_) {
            require(id <= last_id_ && !refused(id) && !calls_.refused(id),
                    "a pending call is above the peer's goaway or the last id allocated");
        }
        for (const std::uint64_t id :
             {std::uint64_t{0}, std::uint64_t{1}, last_id_, saturating_add(last_id_, 1),
              peer_last_.value_or(0), saturating_add(peer_last_.value_or(0), 1), k_max_id}) {
            require(calls_.refused(id) == refused(id),
                    "refused() is not exactly the ids above the lowest goaway");
        }

        // The session around them (what SessionImpl relies on to end).
        const State s = lc_.state();
        require(s != State::draining || !(requests_.empty() && calls_.empty()),
                "draining with nothing in flight (check_drained ran)");
        require(!timer_armed_ || s == State::draining, "the drain timer armed outside draining");
        require(s != State::draining || timer_armed_ || timer_fired_,
                "draining without a drain timer");
        require(s == State::open || s == State::draining || (calls_.empty() && waiters_ == 0),
                "closing with calls pending or senders waiting for space");
        require(s == State::open || s == State::draining || writer_finishing_,
                "closing and the writer was never told to finish");
        require(socket_closed_ == lc_.aborted(), "the socket closed other than by an abort");
        require(!lc_.peer_ended() || calls_.empty(), "calls pending after the peer's end");
        require(!reader_done_ || (s != State::open && calls_.empty()),
                "the reader stopped and the session is open, or calls are pending");
        require(!reader_done_ || !requests_.empty() || s == State::closing || s == State::closed,
                "the reader stopped, no handler runs, and the session is not closing");
        if (lc_.aborted()) {
            for (const Task* task : unfinished_) {
                require(task->cancelled.has_value(), "a task survived an abort uncancelled");
            }
        }
    }

    RequestTable::Limits limits_;
    std::pmr::unsynchronized_pool_resource pool_;
    SessionLifecycle lc_;
    RequestTable requests_;
    CallTable<CallPtr> calls_;

    // Model of the peer's requests.
    std::vector<std::unique_ptr<Task>> tasks_;  // every task made (the table never owns them)
    std::vector<Task*> unfinished_;
    std::map<std::uint64_t, Task*> open_ids_;
    std::uint64_t highest_ = 0;

    // Model of our calls.
    std::map<std::uint64_t, CallPtr> pending_;
    std::vector<CallPtr> ended_;
    std::uint64_t last_id_;
    std::optional<std::uint64_t> peer_last_;

    // The session's side of the actions.
    bool reader_done_ = false;
    bool timer_armed_ = false;
    bool timer_fired_ = false;
    bool socket_closed_ = false;
    bool writer_finishing_ = false;
    bool linger_started_ = false;
    std::size_t waiters_ = 0;

    SessionLifecycleCounts counts_;
};

// Builds session_lifecycle inputs for the seeds (see the Op comments for the arguments).
class Program {
  public:
    Program(std::uint8_t a, std::uint8_t b) : bytes_{a, b} {}
    Program& operator()(Op op, std::initializer_list<std::uint8_t> args = {}) {
        bytes_.push_back(op);
        bytes_.insert(bytes_.end(), args.begin(), args.end());
        return *this;
    }
    Bytes done() const { return bytes_; }

  private:
    Bytes bytes_;
};

// request_id / call_id / goaway_last selectors.
constexpr std::uint8_t unfinished(std::uint8_t i) {
    return static_cast<std::uint8_t>(i << 2);
}
constexpr std::uint8_t next_request() {
    return 1;
}
constexpr std::uint8_t request(std::uint8_t id) {
    return static_cast<std::uint8_t>(((id - 1) << 2) | 2);
}
constexpr std::uint8_t pending(std::uint8_t i) {
    return static_cast<std::uint8_t>(i << 2);
}
constexpr std::uint8_t last_id(std::uint8_t id) {
    return static_cast<std::uint8_t>((id << 2) | 1);
}
constexpr std::uint8_t k_handler = 0x04;  // a small envelope, with a handler
constexpr std::uint8_t k_eof = 0x01;
constexpr std::uint8_t k_incomplete = 0x02;
constexpr std::uint8_t k_timed_out = 4;  // reason_code
constexpr std::uint8_t k_finished = 0x01;

}  // namespace

std::vector<Seed> session_lifecycle_seeds() {
    // Config: max_in_flight 4 and max_message_size 256 unless said otherwise.
    constexpr std::uint8_t cfg = 4 | (1 << 4);
    return {
        // A request and a call in flight, close: goaway, the drain waits for both, then closing,
        // the peer's end and end of stream, finished.
        {"graceful_close.bin", Program(cfg, 0)(op_request, {next_request(), k_handler})(
                                   op_call)(op_close)(op_response, {pending(0)})(op_finish, {0})(
                                   op_peer_end)(op_read_ended, {k_eof})(op_probe, {k_finished})
                                   .done()},
        // Two requests, a notification and two calls in flight when an I/O error aborts.
        {"abort.bin", Program(cfg, 0)(op_request, {next_request(), k_handler})(
                          op_request, {next_request(), k_handler})(op_notification, {k_handler})(
                          op_call)(op_call)(op_waiter, {1})(op_abort, {k_timed_out})(
                          op_read_ended, {0})(op_finish_cancelled)(op_probe, {k_finished})
                          .done()},
        // Three calls; the peer's goaway (last 1) refuses 2 and 3, answers 1, and a later goaway
        // cannot take the refusal back; no call starts after it; close drains at once.
        {"goaway.bin", Program(cfg, 0)(op_call)(op_call)(op_call)(op_goaway, {last_id(1)})(
                           op_response, {pending(0)})(op_goaway, {2})(op_call)(op_close)
                           .done()},
        // The peer ends with a request and a call of ours in flight: no goaway, the call fails,
        // the request is still handled, then the end of stream is graceful.
        {"peer_end.bin",
         Program(cfg, 0)(op_request, {next_request(), k_handler})(op_call)(op_waiter, {1})(
             op_peer_end)(op_finish, {0})(op_read_ended, {k_eof})(op_probe, {k_finished})
             .done()},
        // close, then the drain timer fires with two handlers and a call left: cancelled and
        // failed; the handlers end and the drain with them.
        {"drain_deadline.bin", Program(cfg, 0)(op_request, {next_request(), k_handler})(
                                   op_request, {next_request(), k_handler})(
                                   op_call)(op_close)(op_drain_timer)(op_finish_cancelled)
                                   .done()},
        // The peer reuses the id of a request still being handled: the session aborts.
        {"duplicate_id.bin", Program(cfg, 0)(op_request, {request(5), k_handler})(
                                 op_request, {unfinished(0), k_handler})
                                 .done()},
        // The stream ends inside a record, without the peer's end: the connection was cut.
        {"connection_cut.bin", Program(cfg, 0)(op_request, {next_request(), k_handler})(
                                   op_read_ended, {k_eof | k_incomplete})
                                   .done()},
        // max_in_flight 1: one admitted, then overloaded, too large, unknown method; a
        // notification over the limit; after close, shutting_down.
        {"refusals.bin",
         Program(1 | (1 << 4), 0)(op_request, {next_request(), k_handler})(
             op_request, {next_request(), k_handler})(op_request, {next_request(), 0x7f})(
             op_request, {next_request(), 0x80})(
             op_notification, {k_handler})(op_close)(op_request, {next_request(), k_handler})
             .done()},
        // One id left: a call takes it, the next finds none; the answer still matches.
        {"ids_exhausted.bin",
         Program(cfg, 0x81)(op_call)(op_call)(op_response, {pending(0)}).done()},
        // After the drain deadline a notification is dropped: goaway does not refuse
        // notifications, but nothing would cancel its handler.
        {"late_notification.bin",
         Program(cfg, 0)(op_request, {next_request(), k_handler})(
             op_close)(op_drain_timer)(op_notification, {k_handler})(op_finish_cancelled)
             .done()},
    };
}

SessionLifecycleCounts session_lifecycle_counts(ByteView input) {
    Cursor cursor(input);
    Driver driver(read_config(cursor));
    driver.run(cursor);
    const SessionLifecycleCounts counts = driver.counts();
    driver.wind_down();
    return counts;
}

int fuzz_session_lifecycle(const std::uint8_t* data, std::size_t size) {
    session_lifecycle_counts(ByteView{data, size});
    return 0;
}

}  // namespace sdmp::fuzz
