"""Course configuration: loads coursegrader/course.toml into typed objects (the one place for course facts)."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from .statuses import ProfileName

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
SOURCE_DIR = REPO_ROOT / "source"
RELEASE_DIR = REPO_ROOT / "release"
FIXTURES_DIR = REPO_ROOT / "fixtures"
CASSETTE_DIR = FIXTURES_DIR / "fmapi"
SUBMISSIONS_DIR = FIXTURES_DIR / "submissions"
COURSE_TOML = PACKAGE_DIR / "course.toml"


@dataclass(frozen=True)
class GradedCell:
    grade_id: str
    points: float
    evidence: tuple[str, ...]
    plan: str = "in-class"  # when students fill it in: in-class or homework
    minutes: int = 0  # the estimate for its task: read it, write the code, run the test (in class or at home)


@dataclass(frozen=True)
class AdapterSource:
    """Where an exercise's LoRA adapter comes from: the exercise that saves it, the cell whose points
    vouch for it, and the input naming its folder (course.toml `adapter_from`)."""
    exercise: str
    cell: str
    input: str


PLANS = {"in-class": "授業中", "start-in-class": "授業中に始め、宿題で仕上げる", "homework": "宿題"}
CELL_PLANS = ("in-class", "homework")


@dataclass(frozen=True)
class Exercise:
    id: str
    title: str
    cassette: str  # "" when the exercise makes no Foundation Model API calls
    cells: tuple[GradedCell, ...]
    cell_timeout_s: int | None = None  # overrides [grading] cell_timeout_s
    adapter_from: AdapterSource | None = None  # the LoRA adapter this exercise evaluates
    local_model: bool = False  # runs the profile's model (its time depends on the profile)
    bonus: bool = False  # bonus points: reported beside the core total, never in it

    @property
    def plan(self) -> str:
        """When students do it, from its cells' plans: in-class, start-in-class (finish as homework) or homework."""
        plans = {c.plan for c in self.cells}
        return plans.pop() if len(plans) == 1 else "start-in-class"

    @property
    def notebook(self) -> str:
        return f"{self.id}.ipynb"

    @property
    def notebook_name(self) -> str:
        """The notebook's name without .ipynb, as nbgrader's gradebook keys it."""
        return self.id

    @property
    def class_minutes(self) -> int:
        """The class time its in-class cells take, by their estimates."""
        return sum(c.minutes for c in self.cells if c.plan == "in-class")

    @property
    def homework_minutes(self) -> int:
        return sum(c.minutes for c in self.cells if c.plan == "homework")

    @property
    def max_score(self) -> float:
        return sum(c.points for c in self.cells)

    def cell(self, grade_id: str) -> GradedCell:
        return next(c for c in self.cells if c.grade_id == grade_id)


@dataclass(frozen=True)
class Profile:
    name: ProfileName
    model_id: str
    dataset: str
    max_steps: int
    batch_size: int  # SFTConfig's per_device_train_batch_size
    max_length: int  # SFTConfig's max_length; ex05 trains on the rows that fit in it
    learning_rate: float
    max_new_tokens: int
    min_gozaru_rate: float
    min_gozaru_lift: float
    bertscore_model: str
    bertscore_layers: int
    reference_adapter: str

    def resolve(self, value: str) -> str:
        """Repository-relative paths and `pkg:package/subdir` become absolute; hub IDs stay as they are."""
        if value.startswith("pkg:"):
            import importlib.util

            package, _, sub = value[4:].partition("/")
            spec = importlib.util.find_spec(package)
            return str(Path(spec.submodule_search_locations[0]) / sub) if spec else value
        path = REPO_ROOT / value
        return str(path) if value and path.exists() else value

    def reference_adapter_path(self) -> str | None:
        """The adapter to evaluate when a student's own is unusable; None if the profile has none, or
        it has not been built here yet (the gpu profiles build theirs on the runner)."""
        path = Path(self.resolve(self.reference_adapter)) if self.reference_adapter else None
        return str(path) if path and (path / "adapter_config.json").is_file() else None

    @property
    def hub_ids(self) -> list[tuple[str, str]]:
        """(repository id, "model" or "dataset") for what this profile loads from the Hugging Face Hub."""
        named = ((self.model_id, "model"), (self.dataset, "dataset"), (self.bertscore_model, "model"))
        return [(value, kind) for value, kind in named if not value.startswith("pkg:") and self.resolve(value) == value]

    def kernel_env(self, names: dict[str, str]) -> dict[str, str]:
        env = {
            names["profile"]: self.name,
            names["model_id"]: self.resolve(self.model_id),
            names["dataset"]: self.resolve(self.dataset),
            names["max_steps"]: str(self.max_steps),
            names["batch_size"]: str(self.batch_size),
            names["max_length"]: str(self.max_length),
            names["learning_rate"]: str(self.learning_rate),
            names["max_new_tokens"]: str(self.max_new_tokens),
            names["bertscore_model"]: self.resolve(self.bertscore_model),
            names["bertscore_layers"]: str(self.bertscore_layers),
        }
        if not self.hub_ids:  # all local: never reach for the Hub (with Hub ids, HF_HUB_OFFLINE is the grader's)
            env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        return env


@dataclass(frozen=True)
class MlflowSettings:
    """ex06 during grading: the tracking store in the notebook's folder and the names it must use."""
    tracking_uri: str
    experiment: str
    registered_model: str
    metric_tolerance: float
    load_timeout_s: int
    criteria_timeout_s: int

    def kernel_env(self) -> dict[str, str]:
        return {"MLFLOW_TRACKING_URI": self.tracking_uri, "COURSE_EXPERIMENT": self.experiment,
                "COURSE_REGISTERED_MODEL": self.registered_model}


@dataclass(frozen=True)
class Limits:
    """What the grader reads and writes from student input, bounded (course.toml [limits])."""
    cell_output_kb: int
    feedback_html_mb: int
    requests_log_mb: int
    kept_store_mb: int
    store_budget_s: float
    adapter_max_rank: int
    adapter_max_mb: int

    @property
    def cell_output_bytes(self) -> int:
        return self.cell_output_kb << 10

    @property
    def feedback_html_bytes(self) -> int:
        return self.feedback_html_mb << 20

    @property
    def requests_log_bytes(self) -> int:
        return self.requests_log_mb << 20

    @property
    def kept_store_bytes(self) -> int:
        return self.kept_store_mb << 20


@dataclass(frozen=True)
class SetupStep:
    """Class time that belongs to no exercise: opening the Git folder, the Hugging Face token, reinstalls."""
    what: str  # in Japanese, as the student README shows it
    minutes: int
    before: str = ""  # the exercise it comes before ("": the start of the class)


@dataclass(frozen=True)
class Schedule:
    """The class's hands-on time: its length and its set-up steps (each exercise's cells carry their own minutes)."""
    class_minutes: int
    setup: tuple[SetupStep, ...] = ()

    @property
    def setup_minutes(self) -> int:
        return sum(step.minutes for step in self.setup)


@dataclass(frozen=True)
class Course:
    title: str
    chat_model: str
    kernel: str
    cell_timeout_s: int
    exercise_timeout_s: int
    kernel_start_timeout_s: int
    cpu_threads: int
    redacted_host: str
    workspace_id: str
    exercises: dict[str, Exercise] = field(default_factory=dict)
    profiles: dict[str, Profile] = field(default_factory=dict)
    default_profile: ProfileName = ProfileName.CPU
    profile_env: dict[str, str] = field(default_factory=dict)
    deadline: str = ""
    late_penalty_per_day: float = 0.0
    late_penalty_max: float = 0.0
    mlflow: MlflowSettings | None = None
    sandbox: dict = field(default_factory=dict)
    schedule: Schedule | None = None
    limits: Limits | None = None
    classroom50: dict = field(default_factory=dict)  # assignment, python
    bf16_min_capability: tuple[int, int] = (8, 0)  # [precision]: coursegrader/precision.py
    hub_mirror: str = ""  # [hub_mirror] root: a folder of <repo id>/ copies, for workspaces without the Hub

    def profile(self, name: str | None = None) -> Profile:
        return self.profiles[ProfileName(name or self.default_profile)]

    def cell_limit_s(self, exercise_id: str) -> int:
        """How long one cell of this exercise may run: its own limit, else the course's."""
        return self.exercises[exercise_id].cell_timeout_s or self.cell_timeout_s


HUB_FIELDS = ("model_id", "dataset", "bertscore_model", "bertscore_layers")
BUDGET_FIELDS = ("max_steps", "batch_size", "max_length", "learning_rate", "max_new_tokens", "min_gozaru_rate",
                 "min_gozaru_lift")


def _profile(name: str, profiles: dict) -> Profile:
    """A profile; `hub_ids_from` / `budgets_from` take those fields from another profile, unless it sets them."""
    given = dict(profiles[name])
    spec = {}
    for key, fields in (("hub_ids_from", HUB_FIELDS), ("budgets_from", BUDGET_FIELDS)):
        if key in given:
            source = profiles[given.pop(key)]
            spec.update({f: source[f] for f in fields})
    spec.update(given)
    return Profile(name=ProfileName(name), **{k: spec[k] for k in Profile.__dataclass_fields__ if k != "name"})


def _parse(data: dict) -> Course:
    exercises = {}
    for ex_id, ex in data["exercises"].items():
        cells = tuple(
            GradedCell(gid, float(spec["points"]), tuple(spec.get("evidence", ())), spec.get("plan", "in-class"),
                       int(spec.get("minutes", 0)))
            for gid, spec in ex["cells"].items()
        )
        unknown = {c.plan for c in cells} - set(CELL_PLANS)
        if unknown:
            raise ValueError(f"course.toml {ex_id}: unknown plan {sorted(unknown)}; use one of {CELL_PLANS}")
        adapter_from = AdapterSource(**ex["adapter_from"]) if "adapter_from" in ex else None
        exercises[ex_id] = Exercise(ex_id, ex["title"], ex.get("cassette", ""), cells, ex.get("cell_timeout_s"),
                                    adapter_from, bool(ex.get("local_model")), bool(ex.get("bonus")))
    return Course(
        title=data["course"]["title"],
        chat_model=data["course"]["chat_model"],
        kernel=data["course"]["kernel"],
        cell_timeout_s=int(data["grading"]["cell_timeout_s"]),
        exercise_timeout_s=int(data["grading"]["exercise_timeout_s"]),
        kernel_start_timeout_s=int(data["grading"]["kernel_start_timeout_s"]),
        cpu_threads=int(data["grading"]["cpu_threads"]),
        redacted_host=data["fixture_server"]["redacted_host"],
        workspace_id=str(data["fixture_server"]["workspace_id"]),
        exercises=exercises,
        profiles={ProfileName(name): _profile(name, data["profiles"]) for name, spec in data["profiles"].items()
                  if isinstance(spec, dict)},
        default_profile=ProfileName(data["profiles"]["default"]),
        profile_env=dict(data["profile_env"]),
        deadline=data["course"]["deadline"],
        late_penalty_per_day=float(data["course"]["late_penalty_per_day"]),
        late_penalty_max=float(data["course"]["late_penalty_max"]),
        mlflow=MlflowSettings(**data["mlflow"]),
        sandbox=dict(data["sandbox"]),
        schedule=Schedule(int(data["schedule"]["class_minutes"]),
                          tuple(SetupStep(str(s["what"]), int(s["minutes"]), str(s.get("before", "")))
                                for s in data["schedule"].get("setup", ()))),
        limits=Limits(**data["limits"]),
        classroom50=dict(data["classroom50"]),
        bf16_min_capability=tuple(int(n) for n in data["precision"]["bf16_min_capability"]),
        hub_mirror=str(data["hub_mirror"]["root"]).rstrip("/"),
    )


@lru_cache(maxsize=None)
def load_course(path: Path = COURSE_TOML) -> Course:
    with open(path, "rb") as fh:
        return _parse(tomllib.load(fh))
