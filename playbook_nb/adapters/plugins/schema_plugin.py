"""The built-in `schema_check` plugin (OPS-001 step type `schema_check`): JSON Schema validation.

`validate(entities | data, schema)`: `schema` is a JSON Schema (a table, or a .json/.yaml file next to the
runbook). A list is checked item by item: the result is `{"valid": [items that pass], "errors": [{"index",
"path", "message", "type": "schema_validation"}], "valid_count", "error_count"}`; any other value is checked
whole (`valid` is then the value or nothing). Invalid items do not fail the step unless there are more than
`max_errors`; an invalid schema always does. Pure computation, so a rehearsal runs it for real.
"""

from __future__ import annotations

from typing import Any

from playbook_nb.adapters.plugins.base import FunctionSignature, ParameterDef, Plugin, PluginMetadata
from playbook_nb.adapters.plugins.files import load_document
from playbook_nb.domain.errors import PluginError

ERROR_TYPE = "schema_validation"


class SchemaValidationFailed(RuntimeError):
    show_traceback = False


class SchemaCheckPlugin(Plugin):
    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            name="schema_check",
            version="1.0.0",
            author="playbook-nb",
            description="JSON Schema validation of a step input; valid items and errors as outputs",
            functions={
                "validate": FunctionSignature(
                    name="validate",
                    description="Validate a value (a list: each item) against a JSON Schema",
                    parameters={
                        "entities": ParameterDef(type="any", description="The items to check (a list)"),
                        "data": ParameterDef(type="any", description="Same as entities"),
                        "schema": ParameterDef(
                            type="any", required=True, description="A JSON Schema, or a .json/.yaml file"
                        ),
                        "max_errors": ParameterDef(
                            type="int", description="Fail the step when more items than this are invalid"
                        ),
                    },
                    returns="{valid, errors, valid_count, error_count}",
                )
            },
        )

    def initialize(self, config: dict[str, Any]) -> None:
        pass

    def rehearses(self, spec: dict[str, Any]) -> bool:
        return True  # no I/O beyond reading the schema file

    def execute(self, function_name: str, params: dict[str, Any]) -> Any:
        if function_name != "validate":
            raise PluginError(
                f"plugin 'schema_check' has no function '{function_name}' (available: validate)"
            )
        import jsonschema

        if "entities" in params and "data" in params:
            raise PluginError("plugin 'schema_check': give entities or data, not both")
        if "entities" not in params and "data" not in params:
            raise PluginError(
                "plugin 'schema_check', function 'validate': missing required parameter 'entities'"
            )
        value = params["entities"] if "entities" in params else params["data"]
        schema = self._schema(params["schema"])
        try:
            validator_cls = jsonschema.validators.validator_for(schema)
            validator_cls.check_schema(schema)
        except jsonschema.SchemaError as err:
            raise PluginError(f"plugin 'schema_check': invalid JSON Schema: {err.message}") from None
        validator = validator_cls(schema)
        items = value if isinstance(value, list) else [value]
        valid: list[Any] = []
        errors: list[dict[str, Any]] = []
        for index, item in enumerate(items):
            found = sorted(validator.iter_errors(item), key=lambda e: list(e.absolute_path))
            if not found:
                valid.append(item)
            for problem in found:
                path = "$" + "".join(
                    f"[{p}]" if isinstance(p, int) else f".{p}" for p in problem.absolute_path
                )
                errors.append({"index": index, "path": path, "message": problem.message, "type": ERROR_TYPE})
        invalid = len({e["index"] for e in errors})
        print(f"{len(valid)} valid, {invalid} invalid of {len(items)}")
        for shown in errors[:20]:
            print(f"  item {shown['index']} {shown['path']}: {shown['message']}")
        limit = params.get("max_errors")
        if limit is not None and invalid > limit:
            raise SchemaValidationFailed(f"{invalid} invalid items, more than max_errors = {limit}")
        result = {"valid": valid, "errors": errors, "valid_count": len(valid), "error_count": invalid}
        if not isinstance(value, list):
            result["valid"] = value if not errors else None
        return result

    def _schema(self, schema: Any) -> dict[str, Any]:
        if isinstance(schema, dict):
            return schema
        if isinstance(schema, str):
            path = self.context.resolve(schema) if self.context else None
            if path is None or not path.is_file():
                raise PluginError(
                    f"plugin 'schema_check': schema file '{schema}' not found (looked at {path})"
                )
            loaded = load_document(path, "schema")
            if isinstance(loaded, dict):
                return loaded
            raise PluginError(f"plugin 'schema_check': schema '{path}' is not a JSON object")
        raise PluginError(
            f"plugin 'schema_check': schema must be a table or a file name, got {type(schema).__name__}"
        )

    def cleanup(self) -> None:
        pass
