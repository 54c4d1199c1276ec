"""The offline model over HTTP, as a new user meets it: it drives the real tools to a report and finishes."""

from __future__ import annotations

import uuid

from tests.integration.test_steps_openai import PNG_1x1


def test_offline_run_analyses_files_and_finishes(http) -> None:
    # Given a task with a CSV and an image
    task_id = http.post("/tasks", json={"input": "Summarise my files"}).json()["task_id"]
    csv = b"month,amount,units\nJan,10,1.5\nFeb,32,2.5\n"
    assert (
        http.post(
            f"/tasks/{task_id}/artifacts", files={"file": ("sales.csv", csv)}, data={"relative_path": "data/sales.csv"}
        ).status_code
        == 200
    )
    assert http.post(f"/tasks/{task_id}/artifacts", files={"file": ("pixel.png", PNG_1x1)}).status_code == 200

    # When steps are posted until the agent says it is done
    steps = []
    while not (steps and steps[-1]["is_last"]) and len(steps) < 8:
        response = http.post(f"/tasks/{task_id}/steps")
        assert response.status_code == 200, response.text
        steps.append(response.json())

    # Then the offline model walked list -> analyse -> write -> finish, saying what it is each time
    assert [s["name"] for s in steps] == ["list_files", "run_python", "write_file", "finish"]
    assert all("offline" in s["output"].lower() and s["status"] == "completed" for s in steps)
    assert steps[-1]["is_last"] is True and steps[0]["is_last"] is False
    assert set(steps[-1]) == {  # the spec's fields, plus additional_output
        "step_id",
        "task_id",
        "name",
        "status",
        "input",
        "additional_input",
        "output",
        "artifacts",
        "is_last",
        "created_at",
        "additional_output",
    }
    report = steps[2]["artifacts"][0]
    assert report["file_name"] == "report.md" and report["agent_created"] is True
    text = http.get(f"/tasks/{task_id}/artifacts/{report['artifact_id']}", follow_redirects=True).text
    assert "rows: 2" in text and "amount: sum 42, mean 21" in text and "units: sum 4, mean 2" in text
    assert "image: PNG, 1 x 1 pixels" in text
    task = http.get(f"/tasks/{task_id}").json()
    assert task["status"] == "completed"
    # and the status counters moved with it: the task is counted, and listed, under completed only
    completed = http.get("/tasks", params={"status": "completed", "size": 100}).json()
    created = http.get("/tasks", params={"status": "created", "size": 100}).json()
    assert task_id in [t["task_id"] for t in completed["tasks"]]
    assert task_id not in [t["task_id"] for t in created["tasks"]]
    assert completed["pagination"]["total"] == len(completed["tasks"])
    assert {a["file_name"] for a in task["artifacts"]} == {"sales.csv", "pixel.png", "report.md"}


def test_steps_list_pages_oldest_first(http) -> None:
    task_id = http.post("/tasks", json={"input": "page me"}).json()["task_id"]
    posted = [http.post(f"/tasks/{task_id}/steps").json()["step_id"] for _ in range(3)]

    first = http.get(f"/tasks/{task_id}/steps", params={"page": 1, "size": 2}).json()
    second = http.get(f"/tasks/{task_id}/steps", params={"current_page": 2, "page_size": 2}).json()
    past = http.get(f"/tasks/{task_id}/steps", params={"page": 3, "size": 2}).json()

    assert [s["step_id"] for s in first["steps"] + second["steps"]] == posted
    assert first["pagination"] == {
        "page": 1,
        "size": 2,
        "total": 3,
        "pages": 2,
        "current_page": 1,
        "page_size": 2,
        "total_items": 3,
        "total_pages": 2,
    }
    assert past["steps"] == [] and past["pagination"]["total"] == 3


def test_step_lookups_answer_404_in_the_envelope(http) -> None:
    task_id = http.post("/tasks", json={"input": "x"}).json()["task_id"]
    unknown_step = http.get(f"/tasks/{task_id}/steps/{uuid.uuid4()}")
    unknown_task = http.post(f"/tasks/{uuid.uuid4()}/steps", json={"input": "x"})
    bad_body = http.post(f"/tasks/{task_id}/steps", json={"input": 5})
    huge = http.post(f"/tasks/{task_id}/steps", json={"input": "x" * 70_000})

    assert unknown_step.status_code == 404 and unknown_step.json()["error"]["code"] == "STEP_NOT_FOUND"
    assert unknown_task.status_code == 404 and unknown_task.json()["error"]["code"] == "TASK_NOT_FOUND"
    assert bad_body.status_code == 400 and bad_body.json()["error"]["details"]["field"] == "input"
    assert huge.status_code == 400 and "limit is 65536" in huge.json()["error"]["details"]["reason"]
    assert http.get(f"/tasks/{task_id}/steps").json()["pagination"]["total"] == 0  # refused steps leave nothing


def test_create_task_refuses_agent_options_it_cannot_honour(http) -> None:
    bad_model = http.post("/tasks", json={"input": "x", "additional_input": {"model": "gpt-2"}})
    bad_images = http.post("/tasks", json={"input": "x", "additional_input": {"images": ["file:///etc/passwd"]}})
    good = http.post(
        "/tasks", json={"input": "x", "additional_input": {"model": "gpt-4o", "images": ["https://a/b.png"]}}
    )

    assert bad_model.status_code == 400 and bad_model.json()["error"]["details"]["field"] == "additional_input.model"
    assert bad_images.status_code == 400 and bad_images.json()["error"]["details"]["field"] == "additional_input.images"
    assert good.status_code == 200
