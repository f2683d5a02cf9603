# The session's Asio-free parts (framework/src/detail: send queue, compression choice, keepalive
# clock) compiled into `target` for the session_core fuzz target, which the fuzz preset builds
# without the framework library (and Boost) and test_protocol replays without linking it.
function(sdmp_add_session_core target)
  set(src ${PROJECT_SOURCE_DIR}/framework/src)
  target_sources(${target} PRIVATE
    ${src}/send_queue.cpp ${src}/compression_chooser.cpp ${src}/keepalive_clock.cpp)
  target_include_directories(${target} PRIVATE ${src} ${PROJECT_SOURCE_DIR}/framework/include)
  # sdmp/framework/options.hpp includes log.hpp, which includes fmt.
  target_link_libraries(${target} PRIVATE fmt::fmt)
endfunction()
