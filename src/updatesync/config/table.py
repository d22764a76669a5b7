"""What every table of the hierarchy file's model is made of: `Table` (a TOML table whose
unknown keys are refused), `key` (a key with its meaning, TOML type and default, the source
of `docs/configuration.md`) and the value types checked by `updatesync.config.values`."""

from __future__ import annotations

import typing
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PlainValidator,
    ValidationError,
    model_validator,
)
from pydantic.config import JsonDict
from pydantic_core import InitErrorDetails, PydanticCustomError, PydanticUndefined

from updatesync.config import values
from updatesync.config.schedule import Schedule

Text = Annotated[str, PlainValidator(values.text)]
Host = Annotated[str, PlainValidator(values.host)]
SiteCode = Annotated[str, PlainValidator(values.site_code)]
Flag = Annotated[bool, PlainValidator(values.boolean)]
Minutes = Annotated[timedelta, PlainValidator(values.minutes_or_interval)]
Interval = Annotated[timedelta, PlainValidator(values.interval)]
Days = Annotated[timedelta, PlainValidator(values.days)]
ScheduleText = Annotated[Schedule, PlainValidator(values.schedule)]
StartTime = Annotated[datetime, PlainValidator(values.schedule_start)]
Guids = Annotated[tuple[str, ...], PlainValidator(values.guid_list)]
Languages = Annotated[tuple[str, ...], PlainValidator(values.language_list)]
WebhookUrl = Annotated[str, PlainValidator(values.webhook_url)]
DatabaseUrl = Annotated[str, PlainValidator(values.database_url)]


def key(
    meaning: str,
    *,
    toml: str,
    default: object = PydanticUndefined,
    shown: str | None = None,
    missing: str | None = None,
) -> Any:
    """A key of the file: what it means, its TOML type, its default (`shown` as the reference
    writes it when the value alone would not say it) and, for a required key, what to write
    when it is missing."""
    extra: JsonDict = {"toml": toml}
    if shown is not None:
        extra["shown"] = shown
    if missing is not None:
        extra["missing"] = missing
    return Field(default=default, description=meaning, json_schema_extra=extra)


class Table(BaseModel):
    """A TOML table: unknown keys are refused, a value that is not a table is refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _must_be_a_table(cls, data: object) -> object:
        if not isinstance(data, dict | BaseModel):
            raise values.problem(f"must be a table, got {values.toml_type(data)}")
        return data

    @model_validator(mode="wrap")
    @classmethod
    def _with_its_rules(cls, data: object, handler: ModelWrapValidatorHandler[Table]) -> Any:
        """The table's keys, then its own rules (`check_rules`). A table whose only problems
        are unknown keys is checked again without them, so that the problems of its rules
        (such as a URL that does not fit the upstream's kind) are reported with them."""
        try:
            table = handler(data)
        except ValidationError as exc:
            errors = exc.errors()
            unknown = [e for e in errors if e["type"] == "extra_forbidden" and len(e["loc"]) == 1]
            if not isinstance(data, dict) or not unknown or len(unknown) < len(errors):
                raise
            try:
                handler({k: v for k, v in data.items() if k in cls.model_fields}).check_rules()
            except ValidationError as more:
                errors.extend(more.errors())
            raise ValidationError.from_exception_data(
                cls.__name__, [again(error) for error in errors]
            ) from None
        table.check_rules()
        return table

    def check_rules(self) -> None:
        """The rules between the table's keys; ValidationError at the keys concerned."""


def table_in(annotation: object) -> tuple[type[Table] | None, bool]:
    """The table model a key's annotation holds (`UpstreamTable | None` → UpstreamTable), and
    whether the key is an array of tables (`tuple[SiteTable, ...]`)."""
    if isinstance(annotation, type) and issubclass(annotation, Table):
        return annotation, False
    origin = typing.get_origin(annotation)
    for argument in typing.get_args(annotation):
        inner, many = table_in(argument)
        if inner is not None:
            return inner, many or origin in (tuple, list)
    return None, False


def array_of_tables(value: object, problem: str) -> object:
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise values.problem(problem)
    return value


def fail_at(title: str, loc: values.Loc, message: str, value: object) -> ValidationError:
    return ValidationError.from_exception_data(title, [values.at(loc, message, value)])


def again(error: Any) -> InitErrorDetails:
    """A reported error, to be raised again with others: its type and message kept."""
    context = dict(error.get("ctx") or {})
    context.setdefault("message", error["msg"])
    kind = PydanticCustomError(error["type"], "{message}", context)
    return InitErrorDetails(type=kind, loc=error["loc"], input=error.get("input"))
