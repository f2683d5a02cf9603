cmake_minimum_required(VERSION 3.25)
# Runs `sdmp-bench --quick --json OUT` and checks that every scenario produced a figure for
# every system in SYSTEMS (the ones this build has; default sdmp, tls, tcp). Invoked by ctest
# (bench_quick_smoke).
# (ctest passes SYSTEMS comma-separated.)
if(NOT SYSTEMS)
  set(SYSTEMS sdmp tls tcp)
endif()
string(REPLACE "," ";" SYSTEMS "${SYSTEMS}")
file(REMOVE ${OUT})
execute_process(COMMAND ${BENCH} --quick --json ${OUT} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "sdmp-bench --quick exited with ${rc}")
endif()
file(READ ${OUT} json)
string(JSON count LENGTH "${json}" results)
set(expected_scenarios handshake_rate rr_rate_1 rr_rate_64 rr_rate_64_4k latency_p50_1 latency_p99_1
    bulk_throughput fanin_rr connect_storm connect_storm_retries idle_session_kib)
set(seen "")
math(EXPR last "${count} - 1")
foreach(i RANGE ${last})
  string(JSON scenario GET "${json}" results ${i} scenario)
  string(JSON system GET "${json}" results ${i} system)
  string(JSON value GET "${json}" results ${i} value)
  # A rate or a latency is positive in any build. idle_session_kib is a difference of two
  # resident-set readings: under the sanitizers' allocators (which keep freed memory in
  # quarantine and ignore malloc_trim) and with --quick's single round it can come out
  # negative; it is judged from full Release runs only (docs/performance.md).
  # connect_storm_retries counts connects the server turned away: 0 is the best value.
  if(scenario STREQUAL "connect_storm_retries")
    if(value LESS 0)
      message(FATAL_ERROR "${scenario}/${system}: value ${value} is negative")
    endif()
  elseif(NOT scenario STREQUAL "idle_session_kib" AND value LESS_EQUAL 0)
    message(FATAL_ERROR "${scenario}/${system}: value ${value} is not positive")
  endif()
  list(APPEND seen "${scenario}/${system}")
endforeach()
foreach(scenario ${expected_scenarios})
  foreach(system ${SYSTEMS})
    if(NOT "${scenario}/${system}" IN_LIST seen)
      message(FATAL_ERROR "no result for ${scenario}/${system} in ${OUT}")
    endif()
  endforeach()
endforeach()
message(STATUS "sdmp-bench --quick: ${count} results, every scenario on every system")
