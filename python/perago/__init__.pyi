# The public API of perago, each name once. ``__init__.py`` reads this file to load every name on
# first use, so this stub is both what type checkers see and the runtime's table of exports.
from perago.config import MetricsConfig as MetricsConfig
from perago.config import RuntimeConfig as RuntimeConfig
from perago.config import load_runtime_config as load_runtime_config
from perago.definition.controls import ExecutionLimits as ExecutionLimits
from perago.definition.controls import PublishBudget as PublishBudget
from perago.definition.controls import RetryPolicy as RetryPolicy
from perago.definition.controls import TaskControls as TaskControls
from perago.definition.controls import TimeoutPolicy as TimeoutPolicy
from perago.definition.decorator import TaskDefinition as TaskDefinition
from perago.definition.decorator import load_module_task as load_module_task
from perago.definition.decorator import task as task
from perago.definition.guardrails import forbid_glob as forbid_glob
from perago.definition.guardrails import require_dir as require_dir
from perago.definition.guardrails import require_file as require_file
from perago.definition.guardrails import require_glob as require_glob
from perago.definition.taskdef import build_taskdef as build_taskdef
from perago.definition.taskdef import write_taskdef as write_taskdef
from perago.definition.workspace import WorkspaceInput as WorkspaceInput
from perago.definition.workspace import WorkspaceOutput as WorkspaceOutput
from perago.definition.workspace import WorkspaceSpec as WorkspaceSpec
from perago.errors import GuardrailViolation as GuardrailViolation
from perago.errors import LakeFSError as LakeFSError
from perago.errors import PeragoError as PeragoError
from perago.errors import RuntimeConfigError as RuntimeConfigError
from perago.errors import StaleAttemptError as StaleAttemptError
from perago.errors import TaskDefinitionError as TaskDefinitionError
from perago.errors import TaskExecutionError as TaskExecutionError
from perago.errors import TaskFailed as TaskFailed
from perago.errors import TaskTerminalError as TaskTerminalError
from perago.metrics.api import MetricRecorder as MetricRecorder
from perago.metrics.api import MetricSpec as MetricSpec

__version__: str
__all__: list[str]
