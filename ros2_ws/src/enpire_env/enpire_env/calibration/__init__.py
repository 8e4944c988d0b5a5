"""Camera calibration the ROS way (pure, no rclpy): intrinsics as CameraInfo, camera poses as transforms.

- `camera_model`: rigid poses, quaternions (geometry_msgs order x, y, z, w), pinhole intrinsics in the
  CameraInfo layout, and the table-to-image homography derived from them;
- `transforms`: a tree of static transforms (what /tf_static carries) and lookups through it;
- `calibration_file`: one camera's calibration as a YAML in the ROS camera_info conventions plus its
  pose in the table frame;
- `charuco`: intrinsics and camera-to-table pose from ChArUco board views (OpenCV's aruco module).

Frames (REP 103/105, metres): `table` has its origin at the corner (0, 0) of the task's table plane, x
and y along the task frame's plane axes (x right, y toward the front edge), and z = x cross y pointing
into the table. A point (px, py) in the task's table units is (px * s, py * s, 0) with s = `table_pixel_m`
metres per unit.
`<camera>_optical_frame` is the REP 103 optical frame: z forward along the optical axis, x right, y down.
"""
