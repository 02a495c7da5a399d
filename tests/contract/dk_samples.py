"""DataKitchen's own sample payloads, as test fixtures for the client's parsers.

Each sample is the data shape a DataKitchen source documents, with the source named above it (files of
the PyPI packages DKUtils 2.11.6 and DKCloudCommand 1.5.33; docs/PROVIDERS.md, "DataKitchen:
provenance"). The ids and values are the documented ones; nothing is added, so a parser that needs
a key these samples do not have is relying on an assumption.
"""

from __future__ import annotations

from typing import Any

# DKUtils, dkutils/datakitchen_api/datakitchen_client.py, DataKitchenClient.get_orders: the documented
# answer of GET /v2/order/status/<kitchen> (an order whose only order run failed).
ORDER_STATUS_ANSWER: dict[str, Any] = {
    "customer": "DKImplementation",
    "kitchenname": "New_Customer_Training",
    "orders": [
        {
            "hid": "d1cea220-8c0a-11eb-8d5d-5acebe1b7ce3",
            "input_settings": {
                "customer_git_name": "im",
                "customer_git_org": "DKImplementation",
                "customer_name": "Implementation",
                "email": "user@gmail.com",
                "email_verified": True,
                "graph-setting": [["Train_Model"]],
                "login": "user@gmail.com",
                "parameters": {"edges": [], "nodes": ["Train_Model"]},
                "role": "ADMIN",
                "schedule": "now",
                "user_id": "auth0|5d3b2624888ba60cf584c9d3",
            },
            "order-status": "ORDER_ERROR",
            "recipe": "Training_Sales_Forecast",
            "schedule": "now",
            "variation": "train_walmart_sales_forecasting_model",
        }
    ],
    "repo": "im",
    "servings": {
        "d1cea220-8c0a-11eb-8d5d-5acebe1b7ce3": {
            "servings": [
                {
                    "hid": "d5ccbef2-8c0a-11eb-bfad-1a3acc706153",
                    "order_id": "d1cea220-8c0a-11eb-8d5d-5acebe1b7ce3",
                    "orderrun_status": "Error in OrderRun",
                    "status": "SERVING_ERROR",
                    "timings": {"duration": 120439, "end-time": 1616526493384, "start-time": 1616526372945},
                    "variation_name": "train_walmart_sales_forecasting_model",
                }
            ],
            "total": 1,
        }
    },
    "total-orders": 1,
}
SAMPLE_KITCHEN = "New_Customer_Training"
SAMPLE_RECIPE = "Training_Sales_Forecast"
SAMPLE_VARIATION = "train_walmart_sales_forecasting_model"
SAMPLE_ORDER = "d1cea220-8c0a-11eb-8d5d-5acebe1b7ce3"
SAMPLE_RUN = "d5ccbef2-8c0a-11eb-bfad-1a3acc706153"

# DKUtils, DataKitchenClient.get_order_runs: one entry of GET /v2/order/servings/<kitchen>/<order>.
ORDER_RUN: dict[str, Any] = {
    "order_id": "71d8a966-38e0-11ea-8cf9-a6bbea194887",
    "status": "COMPLETED_SERVING",
    "orderrun_status": "OrderRun Completed",
    "hid": "a8978ddc-83c7-11ea-88ba-9a815c325cee",
    "variation_name": "dk_agent_checker_run_hourly",
    "timings": {"start-time": 1587470413845, "end-time": 1587470432441, "duration": 18596},
}

# DKUtils, DataKitchenClient.get_order_run_details: servings[0] of POST /v2/order/details/<kitchen>
# (the documented run_time_variables are abridged there too).
ORDER_RUN_DETAIL: dict[str, Any] = {
    "order_id": "ca789c92-8bb6-11ea-883f-46ee3c6afcbf",
    "hid": "cd463d80-8bb6-11ea-97c5-8a10ccb96113",
    "recipe_id": "ce7b696e-8bb6-11ea-97c5-8a10ccb96113",
    "status": "SERVING_ERROR",
    "variation_name": "sub_workflow",
    "recipe_name": "Sub_Workflow",
    "run_time_variables": {
        "CAT": "CLS",
        "CurrentKitchen": "Add_Real_Data_and_Infrastructure",
        "CurrentOrderId": "ca789c92-8bb6-11ea-883f-46ee3c6afcbf",
        "CurrentOrderRunId": "cd463d80-8bb6-11ea-97c5-8a10ccb96113",
        "CurrentVariation": "sub_workflow",
        "DH": "12",
        "DT": "20200426",
    },
    "orderrun_status": "Error in OrderRun",
    "resumed_by": None,
    "scheduled_start_time": 1588342778543,
    "variation": {},
    "state": "unknown DKNodeStatus",
}
DETAIL_KITCHEN = "Add_Real_Data_and_Infrastructure"

# DKUtils, dkutils/datakitchen_api/order_run_monitor.py, OrderRunMonitor.parse_log_entry: one entry of
# a details answer's log.lines (asked with logs=True).
LOG_ENTRY: dict[str, Any] = {
    "datetime": "2022-08-16T14:38:58.611000",
    "disk_used": "5.8984375 MB",
    "exc_desc": None,
    "exc_type": None,
    "hostname": "0d4e31d0-1d9b-11ed-971d-621c363ef06a-lqq9t",
    "mem_usage": "127.33 MB",
    "message": "Test Fail: DKDataTestFailed",
    "node": "Fail_Node",
    "order_run_id": "115d3e42-1d9b-11ed-b495-c216e4cc8e61",
    "pid": 22,
    "priority": 27,
    "record_type": "ERROR",
    "syslogts": "2022-08-16T14:38:58-05:00",
    "thread_name": "NodeExecutorThread:0",
    "traceback": None,
}

# DKUtils, order_run_monitor.py: the node statuses OrderRunMonitor compares summary.nodes[<node>].status
# with; a node entry carries status, start_time and timing (Node.update / Node._update_timings).
NODE_FAILED = "DKNodeStatus_production_error"
NODE_SUCCEEDED = "DKNodeStatus_completed_production"

# The seed (datakitchen-run-orders.txt, lines 58 and 61): the bash example's create body.
SEED_CREATE_BODY = '{"parameters":{"testvar":"override_value"}}'
