"""Plugin specs: the schema, fenced spec blocks, the keyword parser and the model writer.

``schema`` (PluginSpec and its rules), ``blocks`` (```json / ```yaml in a comment),
``keywords`` (no-model parser), ``model_writer`` (spec by the model), ``writers`` (the seam).
"""
