# `perfgate --version` prints the project version and the git commit it was
# configured from. The commit is read at configure time; configure runs again
# when HEAD moves (its reflog is a configure dependency), so a rebuild after a
# commit or checkout reports the new one. Without git (a tarball, a clone
# without the tool) the commit is "unknown" and everything still builds.
set(PERFGATE_GIT_COMMIT "unknown")
find_package(Git QUIET)
if(GIT_FOUND)
  execute_process(COMMAND ${GIT_EXECUTABLE} rev-parse --short=12 HEAD
    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR} OUTPUT_VARIABLE commit RESULT_VARIABLE failed
    OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(NOT failed AND commit)
    set(PERFGATE_GIT_COMMIT ${commit})
    execute_process(COMMAND ${GIT_EXECUTABLE} rev-parse --path-format=absolute --git-path logs/HEAD
      WORKING_DIRECTORY ${PROJECT_SOURCE_DIR} OUTPUT_VARIABLE head_log OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
    if(head_log AND EXISTS ${head_log})
      set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${head_log})
    endif()
  endif()
endif()
configure_file(${CMAKE_CURRENT_LIST_DIR}/version.h.in ${PROJECT_BINARY_DIR}/generated/perfgate_version.h @ONLY)
message(STATUS "perfgate: version ${PROJECT_VERSION}, commit ${PERFGATE_GIT_COMMIT}")
