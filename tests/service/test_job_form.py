"""The dashboard's job form is generated from JobCreate's schema: every option must have a place in
it (a group and a label), or be marked deprecated, so a new engine option cannot go missing."""

from api.schemas.jobs import DEPRECATED_FIELDS, FORM_FIELDS, JobCreate


def test_every_job_option_has_a_place_in_the_form():
    assert set(JobCreate.model_fields) - {"dataset_id"} == set(FORM_FIELDS) | DEPRECATED_FIELDS


def test_the_schema_carries_each_options_group_label_and_help():
    properties = JobCreate.model_json_schema()["properties"]
    for name, (group, title) in FORM_FIELDS.items():
        assert (properties[name]["x-group"], properties[name]["title"]) == (group, title)
        assert properties[name]["description"]
    assert all(properties[name]["deprecated"] for name in DEPRECATED_FIELDS)
