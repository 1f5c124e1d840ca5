"""The book's figure vocabulary: one colour per kernel or model, legends in natural order."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from nckernels import style  # noqa: E402


def test_one_colour_per_kernel_whatever_the_activation():
    assert style.color_of("NNGP erf") == style.color_of("NNGP relu") == style.MODEL_COLORS["nngp"]
    assert style.color_of("NTK erf") == style.MODEL_COLORS["ntk"] != style.color_of("NNGP erf")
    assert style.color_of("NTK erf (as coded)") == style.MODEL_COLORS["as coded"]
    assert style.color_of("adaptive (eos)") == style.MODEL_COLORS["adaptive"]
    assert style.color_of("trained net") == style.MODEL_COLORS["trained net"]
    assert style.color_of("data") == style.MODEL_COLORS["data"]
    assert len(set(style.MODEL_COLORS.values())) == len(style.MODEL_COLORS)
    assert style.linestyle_of("NTK relu") == "--" and style.linestyle_of("NNGP erf") == "-"


def test_legend_follows_natural_order_not_alphabetical():
    fig, ax = plt.subplots()
    for d0 in (128, 2, 16, 1):
        ax.plot([0, 1], [d0, d0], label=f"$d_0$ = {d0}")
    labels = [t.get_text() for t in style.ordered_legend(ax).get_texts()]
    assert labels == ["$d_0$ = 1", "$d_0$ = 2", "$d_0$ = 16", "$d_0$ = 128"]
    labels = [t.get_text() for t in style.ordered_legend(ax, order=["$d_0$ = 16"]).get_texts()]
    assert labels[0] == "$d_0$ = 16" and len(labels) == 4
    plt.close(fig)


def test_figure_size_refuses_more_than_three_panels_per_row():
    w1, _ = style.figure_size(1)
    w3, h3 = style.figure_size(3)
    assert w1 < w3 == style.TEXT_WIDTH and h3 > 0
    with pytest.raises(ValueError, match="ncols"):
        style.figure_size(4)


def test_panel_grid_hides_spare_panels_and_labels_every_lowest_panel():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nckernels.style import panel_grid

    fig, panels = panel_grid(4, sharex=True, sharey=True)  # 2 rows of 3: panels 1 and 2 sit above hidden ones
    fig.canvas.draw()
    labelled = [any(t.get_visible() and t.get_text() for t in ax.get_xticklabels()) for ax in panels]
    assert len(panels) == 4 and labelled == [False, True, True, True]
    assert sum(ax.get_visible() for ax in fig.axes) == 4 and len(fig.axes) == 6
    plt.close(fig)
    fig, panels = panel_grid(2, ncols=3)
    assert len(fig.axes) == 2 and fig.get_size_inches()[0] > fig.get_size_inches()[1]
    plt.close(fig)
    with pytest.raises(ValueError, match="n must be"):
        panel_grid(0)
    with pytest.raises(ValueError, match="ncols"):
        panel_grid(3, ncols=0)


def test_label_panels_names_each_row_and_drops_x_labels_without_ticks():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nckernels.style import label_panels, panel_grid

    fig, panels = panel_grid(5, sharex=True)
    for ax in panels:
        ax.set_xlabel("d0")
    label_panels(panels, "NC1", sharex=True)
    assert [ax.get_ylabel() for ax in panels] == ["NC1", "", "", "NC1", ""]
    assert [ax.get_xlabel() for ax in panels] == ["", "", "d0", "d0", "d0"]  # 0 and 1 have panels 3 and 4 below
    plt.close(fig)
