// The two event loops every measurement runs on, and a watchdog that ends a stuck run.
//
// The server side of every system runs on one io_context on its own thread, the client side on
// another: on the 2-core benchmark machine each side gets a core, and a system's server and
// client never compete for one thread. The main thread only orchestrates (starts a trial, waits
// for its result) and reads /proc between trials.
#pragma once

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

namespace sdmp::bench {

namespace asio = boost::asio;

// CPU time this process has used so far, user and system, over all of its threads (getrusage
// RUSAGE_SELF): the harness's, and those a system under test starts itself (gRPC's). Seconds.
double process_cpu_seconds();

class Runtime {
  public:
    Runtime();
    ~Runtime();
    Runtime(const Runtime&) = delete;
    Runtime& operator=(const Runtime&) = delete;

    asio::any_io_executor server_executor() { return server_ctx_.get_executor(); }
    asio::any_io_executor client_executor() { return client_ctx_.get_executor(); }

    // Runs the coroutine `f()` on the server (client) thread and blocks until it completes,
    // returning its result or rethrowing its exception.
    template <typename F>
    auto on_server(F f) {
        return asio::co_spawn(server_ctx_, std::move(f), asio::use_future).get();
    }
    template <typename F>
    auto on_client(F f) {
        return asio::co_spawn(client_ctx_, std::move(f), asio::use_future).get();
    }

  private:
    asio::io_context server_ctx_{1};
    asio::io_context client_ctx_{1};
    asio::executor_work_guard<asio::io_context::executor_type> server_work_;
    asio::executor_work_guard<asio::io_context::executor_type> client_work_;
    std::thread server_thread_;
    std::thread client_thread_;
};

// Ends the process if a trial overruns its time limit by far: the harness must stop by itself
// even if a system under test hangs.
class Watchdog {
  public:
    Watchdog();
    ~Watchdog();
    Watchdog(const Watchdog&) = delete;
    Watchdog& operator=(const Watchdog&) = delete;

    void arm(std::chrono::steady_clock::duration limit, std::string what);
    void disarm();

  private:
    void run();

    std::mutex mutex_;
    std::condition_variable changed_;
    bool armed_ = false;
    bool quit_ = false;
    std::chrono::steady_clock::time_point deadline_;
    std::string what_;
    std::thread thread_;
};

class WatchdogScope {
  public:
    WatchdogScope(Watchdog& dog, std::chrono::steady_clock::duration limit, std::string what)
        : dog_(dog) {
        dog_.arm(limit, std::move(what));
    }
    ~WatchdogScope() { dog_.disarm(); }
    WatchdogScope(const WatchdogScope&) = delete;
    WatchdogScope& operator=(const WatchdogScope&) = delete;

  private:
    Watchdog& dog_;
};

}  // namespace sdmp::bench
