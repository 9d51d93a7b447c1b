"""Running a student's notebook: nbgrader in a throwaway course, the kernel in its own place.

  environment.py       the kernel's environment (no secrets)
  nbgrader_course.py   one exercise's private nbgrader course, the kernel's place, the sandbox preflight
  kernel_launch.py     the course kernel's launch, started first by the nbgrader process, importing
                       the release notebook's modules while nbgrader loads
  nbgrader_job.py      the nbgrader process: the kernel's start, generate_assignment, autograde (scores
                       to grades.json, then said on a pipe), generate_feedback; the empty gradebook template
  resilient_execute.py nbgrader's Execute, surviving a dying kernel, telling one that never
                       started, in the kernel's own folder
  feedback_filters.py  feedback HTML without hidden tests or live student HTML
"""
