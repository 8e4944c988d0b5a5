"""Run in a subprocess by test_yolo_masks.py (torch must load before any EGL context, and a test session
has rendered before): train a tiny YOLO-seg detector of the peg, load it as the `yolo_seg` backend and judge
a few rendered states with it through the framework's verifier. Prints one line `PROBE {json}`.
Usage: python yolo_probe.py OUT_DIR"""
import json
import os
import sys

os.environ.setdefault('MUJOCO_GL', 'egl')


def main(out: str) -> dict:
    from enpire_env.perception import offline_guard
    offline_guard.import_ultralytics(threads=2)
    from enpire_task_peg.render import CAMERA_NAMES, CellCameras
    from enpire_task_peg.simulator import BOX, PEG_HEAD, PegSimulator, obj_to_target, sample_layout
    from enpire_task_peg.task import TASK

    from enpire_env.perception import train
    from enpire_env.verification import Frame, Verifier, load_config
    from enpire_env.verification.backends import Detector, Segmenter, make_backend

    metrics = train.train(out, images=24, epochs=2, imgsz=96, arch=train.SEG_P2_ARCH, batch=8, sizes=(96,),
                          task='peg_insertion')
    detector, segmenter = make_backend('yolo_seg', load_config(TASK), yolo_weights=metrics['weights'])
    detector.conf = 0.001            # an almost untrained model: take whatever it finds
    verifier = Verifier(TASK, load_config(TASK, overrides={'max_age_s': 1.0}), backend='yolo_seg',
                        yolo_weights=metrics['weights'])
    sim = PegSimulator()
    sim.reset(sample_layout(3))
    cams = CellCameras(sim.model, 96, 96)
    image = cams.rgb(sim.data, CAMERA_NAMES[0])
    calls, protos = [], []
    predict = detector.model.predict
    detector.model.predict = lambda *a, **k: calls.append(1) or predict(*a, **k)
    head = detector.model.model.model[-1]
    hook = head.proto.register_forward_hook(lambda _m, _i, output: protos.append(list(output.shape[-2:])))
    boxes = detector.detect(image)
    hook.remove()
    masks = segmenter.segment(image, boxes)
    outside = 0.0
    for box in boxes:
        rest = masks[box.label].copy()
        rest[box.y0:box.y1, box.x0:box.x1] = 0.0
        outside += float(rest.sum())
    frames = {n: Frame(cams.rgb(sim.data, n), None, 5.0, cams.camera_model(n)) for n in CAMERA_NAMES}
    fused, judged = verifier.verify_frames(frames, cameras=CAMERA_NAMES, now=5.0,
                                           layout={'peg': sim.layout.peg, 'box': sim.layout.box})
    state = sim.task_state()
    cams.close()
    sim.close()
    return dict(
        metrics_keys=sorted(metrics), val=metrics['val'], val_masks=metrics['val_masks'],
        mask_ratio=metrics['mask_ratio'], proto_shapes=protos,
        one_backend=detector is segmenter, protocols=isinstance(detector, Detector) and
        isinstance(segmenter, Segmenter), inferences=len(calls), labels=[b.label for b in boxes],
        mask_dtypes=sorted({str(m.dtype) for m in masks.values()}),
        mask_shapes=sorted({m.shape for m in masks.values()}), mask_outside_box=outside,
        learned=verifier.judge_frame.learned, judged=sorted(judged), fused=fused.state.name,
        false_success=bool(fused.success and obj_to_target(state[PEG_HEAD], state[BOX]) > 0.07),
        peg_mask_shape=list(judged[CAMERA_NAMES[0]].masks['peg'].shape),
        classes=json.loads((__import__('pathlib').Path(out) / 'card.json').read_text())['dataset']['classes'])


if __name__ == '__main__':
    print('PROBE ' + json.dumps(main(sys.argv[1]), default=str), flush=True)
